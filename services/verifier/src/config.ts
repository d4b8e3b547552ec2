import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { inputError } from '@joinguard/core';
import { P384_BACKEND_CHOICES, type P384BackendChoice } from '@joinguard/snp';

/**
 * The verifier's configuration: a YAML or JSON file, then environment variables over it, validated once at
 * start. Every path in the file is relative to the file's folder. Errors name the offending setting.
 *
 * The test-only challenge override is deliberately absent: it is a programmatic option of buildServer()
 * that no file or variable can reach.
 */
export interface VerifierConfig {
  /** trustedProxies: the addresses (or CIDR ranges) of the reverse proxies in front, whose X-Forwarded-For is believed */
  listen: { host: string; port: number; trustedProxies?: string[] };
  tls?: { cert: string; key: string; clientCa?: string };
  clusterId: string;
  dataDir: string;
  store: { kind: 'sqlite'; path: string } | { kind: 'jetstream'; servers: string[]; replicas: number; prefix: string };
  signing: {
    keysDir: string;
    alg: 'ES256' | 'ES384';
    rotateDays: number;
    /** How often a running verifier checks whether the active key is due for rotation (and re-reads the ring). */
    checkIntervalSeconds: number;
  };
  keyBroker: { masterSecretFile: string; epoch: number; enabled: boolean };
  challenge: { ttlSeconds: number; macKeyFile: string };
  results: { ttlSeconds: number };
  policy: {
    /** the policy of every node no pool matches; the strict default when absent */
    file?: string;
    /** node pools, tried in order: the first whose `nodes` matches the node name gives the policy */
    pools?: PolicyPoolConfig[];
    /** how often to adopt policy changes made at other replicas, from the shared policy log (0: only at start; default 10) */
    syncSeconds?: number;
  };
  trust: {
    /** Extra SNP ARK certificates (PEM) to trust besides AMD's: the simulated hardware's test root. */
    snpTestRoots: string[];
    /** Extra Intel-style root CAs (PEM), likewise for simulated TDX. */
    tdxTestRoots: string[];
    snpCollateralDir?: string;
    tdxCollateralDir?: string;
  };
  auth: { tokensFile?: string; mtlsRoles: Record<string, Array<'auditor' | 'admin'>> };
  rateLimit: { attestPerMinute: number };
  /**
   * Which ECDSA P-384 implementation verifies SNP report signatures, and whether Nettle's keeps a table per
   * VCEK/VLEK key (see @joinguard/snp p384.ts).
   */
  crypto: { p384: P384BackendChoice; p384KeyTables: boolean };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** One node pool: `nodes` is a regular expression that must match the whole node name. */
export interface PolicyPoolConfig {
  name: string;
  file: string;
  nodes: string;
}

/** Name of the pool of every node that no configured pool matches (`policy.file` or the strict default). */
export const DEFAULT_POOL = 'default';
export const POOL_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const MAX_POOLS = 64;
export const MAX_POOL_PATTERN_CHARS = 1024;

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        trustedProxies: { type: 'array', maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 64 } },
      },
    },
    tls: { type: 'object', additionalProperties: false, required: ['cert', 'key'], properties: { cert: { type: 'string' }, key: { type: 'string' }, clientCa: { type: 'string' } } },
    clusterId: { type: 'string', minLength: 1, maxLength: 253 },
    dataDir: { type: 'string', minLength: 1 },
    store: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'sqlite' }, path: { type: 'string' } } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'servers'],
          properties: { kind: { const: 'jetstream' }, servers: { type: 'array', minItems: 1, items: { type: 'string' } }, replicas: { type: 'integer', minimum: 1, maximum: 5 }, prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
        },
      ],
    },
    signing: {
      type: 'object',
      additionalProperties: false,
      properties: { keysDir: { type: 'string' }, alg: { enum: ['ES256', 'ES384'] }, rotateDays: { type: 'number', exclusiveMinimum: 0 }, checkIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86400 } },
    },
    keyBroker: { type: 'object', additionalProperties: false, properties: { masterSecretFile: { type: 'string' }, epoch: { type: 'integer', minimum: 0 }, enabled: { type: 'boolean' } } },
    challenge: { type: 'object', additionalProperties: false, properties: { ttlSeconds: { type: 'integer', minimum: 5, maximum: 3600 }, macKeyFile: { type: 'string' } } },
    results: { type: 'object', additionalProperties: false, properties: { ttlSeconds: { type: 'integer', minimum: 30, maximum: 86400 } } },
    policy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        file: { type: 'string' },
        syncSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
        pools: {
          type: 'array',
          maxItems: MAX_POOLS,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'file', 'nodes'],
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 63, pattern: POOL_NAME_PATTERN },
              file: { type: 'string', minLength: 1 },
              nodes: { type: 'string', minLength: 1, maxLength: MAX_POOL_PATTERN_CHARS },
            },
          },
        },
      },
    },
    trust: {
      type: 'object',
      additionalProperties: false,
      properties: {
        snpTestRoots: { type: 'array', items: { type: 'string' } },
        tdxTestRoots: { type: 'array', items: { type: 'string' } },
        snpCollateralDir: { type: 'string' },
        tdxCollateralDir: { type: 'string' },
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tokensFile: { type: 'string' },
        mtlsRoles: { type: 'object', additionalProperties: { type: 'array', items: { enum: ['auditor', 'admin'] } } },
      },
    },
    rateLimit: { type: 'object', additionalProperties: false, properties: { attestPerMinute: { type: 'integer', minimum: 1 } } },
    crypto: { type: 'object', additionalProperties: false, properties: { p384: { enum: P384_BACKEND_CHOICES }, p384KeyTables: { type: 'boolean' } } },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile(schema);

type Partial2<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

export function defaultConfig(dataDir = '.joinguard'): VerifierConfig {
  return {
    listen: { host: '127.0.0.1', port: 8443 },
    clusterId: 'joinguard-dev',
    dataDir,
    store: { kind: 'sqlite', path: resolve(dataDir, 'records.sqlite') },
    signing: { keysDir: resolve(dataDir, 'signing-keys'), alg: 'ES256', rotateDays: 30, checkIntervalSeconds: 3600 },
    keyBroker: { masterSecretFile: resolve(dataDir, 'disk-master.key'), epoch: 0, enabled: true },
    challenge: { ttlSeconds: 300, macKeyFile: resolve(dataDir, 'challenge-mac.key') },
    results: { ttlSeconds: 900 },
    policy: {},
    trust: { snpTestRoots: [], tdxTestRoots: [] },
    auth: { mtlsRoles: {} },
    rateLimit: { attestPerMinute: 120 },
    crypto: { p384: 'auto', p384KeyTables: true },
    logLevel: 'info',
  };
}

/** Reads, overlays the environment, validates and resolves paths. Throws an input error naming every problem. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): VerifierConfig {
  const env = opts.env ?? process.env;
  let raw: Record<string, unknown> = {};
  let base = process.cwd();
  const file = opts.file ?? env.JOINGUARD_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw inputError('CONFIG_UNREADABLE', `config file ${file} cannot be read: ${(e as Error).message}`, { file });
    }
    try {
      const parsed: unknown = YAML.parse(text);
      raw = parsed === null || parsed === undefined ? {} : (parsed as Record<string, unknown>);
    } catch (e) {
      throw inputError('CONFIG_SYNTAX', `config file ${file} is not valid YAML/JSON: ${(e as Error).message}`, { file });
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw inputError('CONFIG_INVALID', `config file ${file} must hold a mapping`, { file });
    base = dirname(resolve(file));
  }
  applyEnv(raw, env);
  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
    throw inputError('CONFIG_INVALID', `invalid configuration${file ? ` in ${file}` : ''}: ${problems.join('; ')}`, { problems });
  }
  const problems = [...poolProblems((raw as { policy?: { pools?: PolicyPoolConfig[] } }).policy?.pools ?? []), ...settingProblems(raw as Partial2<VerifierConfig>)];
  if (problems.length > 0) throw inputError('CONFIG_INVALID', `invalid configuration${file ? ` in ${file}` : ''}: ${problems.join('; ')}`, { problems });
  return resolveConfig(raw as Partial2<VerifierConfig>, base);
}

/**
 * A pool's `nodes` as the regular expression matching the whole node name, or the reason it cannot be one.
 * The pattern must compile on its own before it is wrapped in `^(?:…)$`, so that it cannot close the group
 * and escape the anchors (`a)|(.*`).
 */
export function compilePoolPattern(pattern: string): RegExp | string {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'must be a non-empty string';
  if (pattern.length > MAX_POOL_PATTERN_CHARS) return `must be at most ${MAX_POOL_PATTERN_CHARS} characters`;
  try {
    new RegExp(pattern);
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    return `is not a valid regular expression: ${(e as Error).message}`;
  }
}

/** What the schema cannot say about `policy.pools`: unique names, `default` reserved, patterns that compile. */
export function poolProblems(pools: readonly PolicyPoolConfig[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  const nameRe = new RegExp(POOL_NAME_PATTERN);
  if (pools.length > MAX_POOLS) problems.push(`/policy/pools must have at most ${MAX_POOLS} items`);
  pools.forEach((pool, i) => {
    const at = `/policy/pools/${i}`;
    if (typeof pool?.name !== 'string' || pool.name.length > 63 || !nameRe.test(pool.name)) problems.push(`${at}/name must be a DNS-1123 label (${POOL_NAME_PATTERN}, at most 63 characters)`);
    else if (pool.name === DEFAULT_POOL) problems.push(`${at}/name "${DEFAULT_POOL}" is reserved for the nodes no pool matches (policy.file)`);
    else if (seen.has(pool.name)) problems.push(`${at}/name "${pool.name}" is also the name of /policy/pools/${seen.get(pool.name)}`);
    else seen.set(pool.name, i);
    if (typeof pool?.file !== 'string' || pool.file.length === 0) problems.push(`${at}/file must name a policy file`);
    const re = compilePoolPattern(pool?.nodes);
    if (typeof re === 'string') problems.push(`${at}/nodes ${re}`);
  });
  return problems;
}

function isAddressOrRange(s: string): boolean {
  const [addr, bits, ...rest] = s.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** What the schema cannot say: settings that are each valid but do not work together. */
function settingProblems(c: Partial2<VerifierConfig>): string[] {
  const problems: string[] = [];
  (c.listen?.trustedProxies ?? []).forEach((p, i) => {
    if (!isAddressOrRange(p)) problems.push(`/listen/trustedProxies/${i} ${JSON.stringify(p)} is not an IP address or CIDR range`);
  });
  const mtlsNames = Object.keys(c.auth?.mtlsRoles ?? {});
  if (mtlsNames.length > 0 && !c.tls?.clientCa) {
    problems.push(`/auth/mtlsRoles gives roles to client certificates (${mtlsNames.join(', ')}), but /tls/clientCa is not set, so no client certificate is ever asked for`);
  }
  return problems;
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const section = (k: string): Record<string, unknown> => {
    const v = raw[k];
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    const o: Record<string, unknown> = {};
    raw[k] = o;
    return o;
  };
  if (env.JOINGUARD_LISTEN_HOST) section('listen').host = env.JOINGUARD_LISTEN_HOST;
  if (env.JOINGUARD_LISTEN_PORT) {
    const port = Number(env.JOINGUARD_LISTEN_PORT);
    section('listen').port = Number.isInteger(port) ? port : env.JOINGUARD_LISTEN_PORT;
  }
  if (env.JOINGUARD_CLUSTER_ID) raw.clusterId = env.JOINGUARD_CLUSTER_ID;
  if (env.JOINGUARD_DATA_DIR) raw.dataDir = env.JOINGUARD_DATA_DIR;
  if (env.JOINGUARD_NATS_SERVERS) {
    // The servers replace the file's; the rest of a JetStream store section (replicas, prefix) is kept, since
    // a replica whose prefix fell back to the default would write to another stream than its peers.
    const file = raw.store as Record<string, unknown> | undefined;
    const kept = file && typeof file === 'object' && !Array.isArray(file) && file.kind === 'jetstream' ? file : {};
    raw.store = { ...kept, kind: 'jetstream', servers: env.JOINGUARD_NATS_SERVERS.split(',').map((s) => s.trim()).filter(Boolean) };
  }
  if (env.JOINGUARD_POLICY) section('policy').file = env.JOINGUARD_POLICY;
  if (env.JOINGUARD_LOG_LEVEL) raw.logLevel = env.JOINGUARD_LOG_LEVEL;
  if (env.JOINGUARD_CRYPTO_P384) section('crypto').p384 = env.JOINGUARD_CRYPTO_P384;
  // "true" and "false" become booleans; anything else is left as text for the schema to refuse by name.
  const tables = env.JOINGUARD_CRYPTO_P384_KEY_TABLES;
  if (tables) section('crypto').p384KeyTables = tables === 'true' ? true : tables === 'false' ? false : tables;
}

function resolveConfig(c: Partial2<VerifierConfig>, base: string): VerifierConfig {
  const p = (x: string): string => resolve(base, x);
  const dataDir = p(c.dataDir ?? '.joinguard');
  const d = defaultConfig(dataDir);
  const store: VerifierConfig['store'] =
    c.store?.kind === 'jetstream'
      ? { kind: 'jetstream', servers: c.store.servers ?? [], replicas: c.store.replicas ?? 3, prefix: c.store.prefix ?? 'joinguard' }
      : { kind: 'sqlite', path: c.store && 'path' in c.store && c.store.path ? p(c.store.path) : d.store.kind === 'sqlite' ? d.store.path : '' };
  return {
    listen: { ...d.listen, ...c.listen },
    ...(c.tls?.cert && c.tls.key ? { tls: { cert: p(c.tls.cert), key: p(c.tls.key), ...(c.tls.clientCa ? { clientCa: p(c.tls.clientCa) } : {}) } } : {}),
    clusterId: c.clusterId ?? d.clusterId,
    dataDir,
    store,
    signing: { ...d.signing, ...c.signing, keysDir: c.signing?.keysDir ? p(c.signing.keysDir) : d.signing.keysDir },
    keyBroker: { ...d.keyBroker, ...c.keyBroker, masterSecretFile: c.keyBroker?.masterSecretFile ? p(c.keyBroker.masterSecretFile) : d.keyBroker.masterSecretFile },
    challenge: { ...d.challenge, ...c.challenge, macKeyFile: c.challenge?.macKeyFile ? p(c.challenge.macKeyFile) : d.challenge.macKeyFile },
    results: { ...d.results, ...c.results },
    policy: {
      ...(c.policy?.file ? { file: p(c.policy.file) } : {}),
      ...(c.policy?.pools ? { pools: c.policy.pools.map((x) => ({ name: x.name, file: p(x.file), nodes: x.nodes })) } : {}),
      ...(c.policy?.syncSeconds !== undefined ? { syncSeconds: c.policy.syncSeconds } : {}),
    },
    trust: {
      snpTestRoots: (c.trust?.snpTestRoots ?? []).map(p),
      tdxTestRoots: (c.trust?.tdxTestRoots ?? []).map(p),
      ...(c.trust?.snpCollateralDir ? { snpCollateralDir: p(c.trust.snpCollateralDir) } : {}),
      ...(c.trust?.tdxCollateralDir ? { tdxCollateralDir: p(c.trust.tdxCollateralDir) } : {}),
    },
    auth: { ...(c.auth?.tokensFile ? { tokensFile: p(c.auth.tokensFile) } : {}), mtlsRoles: c.auth?.mtlsRoles ?? {} },
    rateLimit: { ...d.rateLimit, ...c.rateLimit },
    crypto: { ...d.crypto, ...c.crypto },
    logLevel: c.logLevel ?? d.logLevel,
  };
}
