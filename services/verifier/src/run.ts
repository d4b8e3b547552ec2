import { createHmac } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { inputError, isJoinguardError, JoinguardError } from '@joinguard/core';
import { defaultPolicy, loadPolicy, policyDigest, type Policy } from '@joinguard/policy';
import { jetStreamNames, openJetStreamStore, openSqliteStore, type RecordStore } from '@joinguard/store';
import { ChainCache, NETTLE_LIBRARIES, p384FallbackReason, useP384Backend } from '@joinguard/snp';
import { PckChainCache } from '@joinguard/tdx';
import { defaultTrust, type AppraisalTrust } from './appraise/index.js';
import { tdxCollateralIssuedAt } from './appraise/trust.js';
import { loadTokens } from './auth.js';
import { compilePoolPattern, DEFAULT_POOL, poolProblems, type VerifierConfig } from './config.js';
import { loadMasterSecret } from './keybroker.js';
import { VerifierMetrics } from './metrics.js';
import { loadOrCreateSecret, SigningKeys } from './secrets.js';
import { buildServer } from './server.js';
import { policyStatePath, readPolicyState, Verifier, type PolicyPool, type TestHooks } from './service.js';

export interface RunningVerifier {
  app: FastifyInstance;
  verifier: Verifier;
  store: RecordStore;
  keys: SigningKeys;
  metrics: VerifierMetrics;
  /** base URL once listening */
  url: string;
  close(): Promise<void>;
}

export function readPolicy(file: string | undefined, now: Date): Policy {
  if (!file) return defaultPolicy();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw inputError('CONFIG_POLICY_UNREADABLE', `policy file ${file} cannot be read: ${(e as Error).message}`, { file });
  }
  return loadPolicy(text, now).policy;
}

/** Where the verifier keeps policies set through the admin routes. */
export function policyStateDir(config: VerifierConfig): string {
  return join(config.dataDir, 'policies');
}

/**
 * The node pools of the configuration, in match order with the default pool last, each with the policy in
 * force: the one an admin route set (kept under the data folder) while the configured policy is still the one
 * it replaced, else the configured file (or the strict default). A kept policy whose configured file changed
 * since is set aside (renamed `*.superseded-<time>`): the file is the newer decision.
 */
export function loadPools(config: VerifierConfig, now: Date, log?: { warn(o: object, msg: string): void }): PolicyPool[] {
  const specs = config.policy.pools ?? [];
  const problems = poolProblems(specs);
  if (problems.length > 0) throw inputError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, { problems });
  const cache = new Map<string, Policy>();
  const read = (pool: string, file: string | undefined): Policy => {
    const key = file ?? '';
    let p = cache.get(key);
    if (!p) {
      try {
        p = readPolicy(file, now);
      } catch (e) {
        if (isJoinguardError(e) && e.kind === 'input' && file) {
          throw new JoinguardError(e.code, `node pool ${pool}: policy file ${file}: ${e.message}`, { ...e.details, pool, file }, { kind: 'input', cause: e });
        }
        throw e;
      }
      cache.set(key, p);
    }
    return p;
  };
  const dir = policyStateDir(config);
  const entries: Array<{ name: string; nodes?: string; file?: string }> = [...specs.map((s) => ({ name: s.name, nodes: s.nodes, file: s.file })), { name: DEFAULT_POOL, ...(config.policy.file ? { file: config.policy.file } : {}) }];
  const setAside: Array<() => void> = [];
  const pools = entries.map((e): PolicyPool => {
    const configured = read(e.name, e.file);
    if (e.nodes !== undefined && configured.nodePool !== undefined && configured.nodePool !== e.name) {
      throw inputError('CONFIG_INVALID', `invalid configuration: /policy/pools: pool ${e.name} uses ${e.file}, whose nodePool is ${configured.nodePool}`, { pool: e.name, file: e.file });
    }
    const configDigest = policyDigest(configured);
    const configSource = e.file ? ('file' as const) : ('default' as const);
    const base: PolicyPool = {
      name: e.name,
      ...(e.nodes !== undefined ? { nodes: compilePoolPattern(e.nodes) as RegExp, nodesPattern: e.nodes } : {}),
      policy: configured,
      ref: { id: configured.name, digest: configDigest },
      source: configSource,
      ...(e.file ? { file: e.file } : {}),
      configDigest,
      configSource,
    };
    const path = policyStatePath(dir, e.name);
    const kept = readPolicyState(path, e.name, now);
    if (!kept) return base;
    if (kept.configDigest !== configDigest) {
      const aside = `${path}.superseded-${now.toISOString().replace(/[:.]/g, '-')}`;
      setAside.push(() => renameSync(path, aside));
      log?.warn({ pool: e.name, kept: kept.digest, configured: configDigest, file: aside }, `node pool ${e.name}: the configured policy changed since an admin set ${kept.digest.slice(0, 12)}… on ${kept.updatedAt}; the configured policy is used`);
      return base;
    }
    return { ...base, policy: kept.policy, ref: { id: kept.policy.name, digest: kept.digest }, source: 'api', updatedAt: kept.updatedAt, updatedBy: kept.updatedBy };
  });
  // Only once every pool loaded: a start that fails leaves the kept policies as they were.
  for (const f of setAside) f();
  return pools;
}

/**
 * Opens everything the configuration names (store, keys, secrets, policy, trust anchors), builds the
 * HTTP server and listens. `testHooks` exist only here, as an argument: see TestHooks.
 */
export async function startVerifier(config: VerifierConfig, opts: { testHooks?: TestHooks; listen?: boolean; now?: () => Date } = {}): Promise<RunningVerifier> {
  const now = opts.now ?? (() => new Date());
  const logger = pino({ level: config.logLevel, redact: ['req.headers.authorization'] });
  // First, so that a forced backend that cannot load stops the start before anything is opened.
  const p384 = useP384Backend(config.crypto.p384, NETTLE_LIBRARIES, { enabled: config.crypto.p384KeyTables });
  const fallback = p384FallbackReason();
  const tables = p384.keyTables?.();
  if (fallback) logger.warn({ backend: p384.name, reason: fallback }, `ECDSA P-384: Nettle cannot be used (${fallback}); using ${p384.library}, which is slower`);
  else if (tables && !tables.enabled && config.crypto.p384KeyTables) {
    logger.warn({ backend: p384.name, library: p384.library, reason: tables.reason }, `ECDSA P-384 verification by ${p384.library}, without per-key tables (${tables.reason}), which is slower`);
  } else logger.info({ backend: p384.label, library: p384.library }, `ECDSA P-384 verification by ${p384.library}${tables?.enabled ? ' with per-key tables' : ''}`);
  // Every file the configuration names is read (and every secret created) before the signing keys and the
  // store are opened, so that a wrong path stops the start with the setting's name and nothing written.
  const readSetting = (setting: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw inputError('CONFIG_FILE_UNREADABLE', `${setting}: ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { setting, path });
    }
  };
  const trust = defaultTrust({
    snpTestRootsPem: config.trust.snpTestRoots.map((f, i) => readSetting(`trust.snpTestRoots[${i}]`, f).toString('utf8')),
    tdxTestRootsPem: config.trust.tdxTestRoots.map((f, i) => readSetting(`trust.tdxTestRoots[${i}]`, f).toString('utf8')),
    ...(config.trust.tdxCollateralDir ? { tdxCollateralDir: config.trust.tdxCollateralDir } : {}),
    ...(config.trust.snpCollateralDir ? { snpCollateralDir: config.trust.snpCollateralDir } : {}),
  });
  const https = config.tls
    ? { key: readSetting('tls.key', config.tls.key), cert: readSetting('tls.cert', config.tls.cert), ...(config.tls.clientCa ? { ca: readSetting('tls.clientCa', config.tls.clientCa) } : {}) }
    : undefined;
  const tokens = config.auth.tokensFile ? loadTokens(config.auth.tokensFile) : [];
  const pools = loadPools(config, now(), logger);
  const challengeMacKey = loadOrCreateSecret(config.challenge.macKeyFile, 'challenge MAC key');
  const masterSecret = config.keyBroker.enabled ? loadMasterSecretOrCreate(config.keyBroker.masterSecretFile) : undefined;
  const keys = await SigningKeys.open({
    dir: config.signing.keysDir,
    alg: config.signing.alg,
    rotateDays: config.signing.rotateDays,
    resultTtlSec: config.results.ttlSeconds,
    clock: now,
    onError: (e) =>
      isJoinguardError(e) && e.code === 'KEYS_ROTATION_DUE' ? logger.warn({ err: e }, e.message) : logger.error({ err: e }, 'signing key maintenance failed'),
    onChange: (o) => logger.info({ kid: o.kid, rotated: o.rotated, adopted: o.adopted }, o.rotated ? 'signing key rotated' : 'signing key of another replica adopted'),
  });
  // The store signs records with whatever key is active: a rotation swaps the fields of this one signer.
  const signer = { get kid() { return keys.active.kid; }, get alg() { return keys.active.alg; }, get privateKey() { return keys.active.privateKey; } };
  const store: RecordStore =
    config.store.kind === 'sqlite'
      ? openSqliteStore({ path: config.store.path, signer, now })
      : // The buckets are named by the prefix too: two deployments on one NATS share no nonce or node state.
        await openJetStreamStore({ servers: config.store.servers, replicas: config.store.replicas, signer, now, ...jetStreamNames(config.store.prefix) });
  try {
    if (masterSecret) await checkSharedDiskSecret(store, masterSecret, config);
    // Rotation while running: the timer is unref'd and only checks; a due key is rotated under the folder's lock.
    keys.startMaintenance(config.signing.checkIntervalSeconds * 1000);
    const metrics = new VerifierMetrics({ defaultMetrics: true });
    metrics.cryptoBackend.set({ operation: 'ecdsa_p384_verify', backend: p384.name, library: p384.library }, 1);
    metrics.p384KeyTablesFrom(() => {
      const t = p384.keyTables?.();
      return t?.enabled ? t : undefined;
    });
    watchCollateral(trust, metrics, now);
    const verifier = new Verifier({
      store,
      keys,
      metrics,
      pools,
      policyDir: policyStateDir(config),
      trust,
      caches: { snpChains: new ChainCache(), tdxPck: new PckChainCache() },
      challengeMacKeys: [challengeMacKey],
      challengeTtlSec: config.challenge.ttlSeconds,
      resultTtlSec: config.results.ttlSeconds,
      ...(masterSecret ? { masterSecret } : {}),
      clusterId: config.clusterId,
      keyEpoch: config.keyBroker.epoch,
      issuer: `joinguard:${config.clusterId}`,
      now,
      log: logger,
      ...(opts.testHooks ? { testHooks: opts.testHooks } : {}),
    });
    // Policy changes made at other replicas while this one was away come first; then the audit trail says which
    // policy was in force from when: a record for each pool whose policy differs from the last one recorded.
    await verifier.syncPolicies();
    await verifier.recordPoliciesInForce();
    const app = await buildServer({
      verifier,
      metrics,
      tokens,
      mtlsRoles: config.auth.mtlsRoles,
      attestPerMinute: config.rateLimit.attestPerMinute,
      ...(config.listen.trustedProxies ? { trustedProxies: config.listen.trustedProxies } : {}),
      logger,
      ...(https ? { https } : {}),
      ready: async () => {
        await store.logs();
        return true;
      },
    });
    let url = '';
    if (opts.listen !== false) {
      url = await app.listen({ host: config.listen.host, port: config.listen.port });
    }
    // Changes made at other replicas while running (unref'd: it never keeps the process alive).
    const syncMs = (config.policy.syncSeconds ?? 10) * 1000;
    const policySync =
      syncMs > 0
        ? setInterval(() => {
            verifier
              .syncPolicies()
              .then((pools) => pools.length > 0 && logger.info({ pools }, 'policy changed at another replica adopted'))
              .catch((e: unknown) => logger.warn({ err: e }, 'following the policy log failed'));
          }, syncMs).unref()
        : undefined;
    return {
      app,
      verifier,
      store,
      keys,
      metrics,
      url,
      close: async () => {
        clearInterval(policySync);
        await keys.stopMaintenance();
        await app.close();
        await store.close();
      },
    };
  } catch (e) {
    await keys.stopMaintenance().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Collateral metrics: joinguard_collateral_cache_age_seconds{kind} from what the verifier loaded (the TDX
 * bundle's issue date, the SNP KDS cache's file times), read at each scrape with the verifier's clock, and
 * joinguard_collateral_fetch_failures_total{kind} for each appraisal whose collateral was not found.
 */
function watchCollateral(trust: AppraisalTrust, metrics: VerifierMetrics, now: () => Date): void {
  const tdxIssued = trust.tdxCollateral ? tdxCollateralIssuedAt(trust.tdxCollateral) : undefined;
  const snp = trust.snpCollateral;
  metrics.collateralAgeFrom(() => {
    const t = now();
    return { ...(tdxIssued ? { tdx: Math.max(0, (t.getTime() - tdxIssued.getTime()) / 1000) } : {}), ...(snp ? snp.ages(t) : {}) };
  });
  // Present from the start (0), for the kinds this configuration can fail on.
  metrics.collateralFetchFailures.inc({ kind: 'tdx' }, 0);
  if (snp) metrics.collateralFetchFailures.inc({ kind: 'snp_vcek' }, 0);
  trust.onCollateralMiss = (kind) => metrics.collateralFetchFailures.inc({ kind });
}

/**
 * Disk keys are derived from the master secret and the cluster id: replicas of one store that read different
 * ones would hand a node another key than the one its disk was sealed with (a replica started on a data folder
 * of its own creates a secret of its own). The first verifier of a store pins a fingerprint of the two
 * (HMAC-SHA256 keyed by the secret, which reveals nothing of it); one that differs is refused at start.
 */
export async function checkSharedDiskSecret(store: RecordStore, masterSecret: Uint8Array, config: VerifierConfig): Promise<void> {
  const mine = createHmac('sha256', masterSecret).update(`joinguard/pin/disk-keys/v1\0${config.clusterId}`).digest('hex');
  const pinned = await store.pinSetting('disk-keys', mine);
  if (pinned === mine) return;
  throw inputError(
    'CONFIG_DISK_SECRET_MISMATCH',
    `the disk-key master secret (${config.keyBroker.masterSecretFile}) or clusterId (${config.clusterId}) is not the one the other verifiers of this store use: every replica must read the same secret file and cluster id, or nodes would be given keys that do not open their disks (fingerprint here ${mine.slice(0, 16)}…, in the store ${pinned.slice(0, 16)}…)`,
    { masterSecretFile: config.keyBroker.masterSecretFile, clusterId: config.clusterId, fingerprint: mine, pinned },
  );
}

function loadMasterSecretOrCreate(path: string): Uint8Array {
  // The embedded default creates the secret on first start; an existing file is read with its mode checked.
  loadOrCreateSecret(path, 'disk-key master secret');
  return loadMasterSecret(path);
}
