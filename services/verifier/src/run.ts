import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { inputError, isJoinguardError } from '@joinguard/core';
import { defaultPolicy, loadPolicy, policyDigest, type Policy } from '@joinguard/policy';
import { openJetStreamStore, openSqliteStore, type RecordStore } from '@joinguard/store';
import { ChainCache } from '@joinguard/snp';
import { PckChainCache } from '@joinguard/tdx';
import { defaultTrust, type AppraisalTrust } from './appraise/index.js';
import { tdxCollateralIssuedAt } from './appraise/trust.js';
import { loadTokens } from './auth.js';
import type { VerifierConfig } from './config.js';
import { loadMasterSecret } from './keybroker.js';
import { VerifierMetrics } from './metrics.js';
import { loadOrCreateSecret, SigningKeys } from './secrets.js';
import { buildServer } from './server.js';
import { Verifier, type TestHooks } from './service.js';

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

/**
 * Opens everything the configuration names (store, keys, secrets, policy, trust anchors), builds the
 * HTTP server and listens. `testHooks` exist only here, as an argument: see TestHooks.
 */
export async function startVerifier(config: VerifierConfig, opts: { testHooks?: TestHooks; listen?: boolean; now?: () => Date } = {}): Promise<RunningVerifier> {
  const now = opts.now ?? (() => new Date());
  const logger = pino({ level: config.logLevel, redact: ['req.headers.authorization'] });
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
      : await openJetStreamStore({ servers: config.store.servers, replicas: config.store.replicas, signer, now, stream: `${config.store.prefix.toUpperCase()}_RECORDS`, subjectPrefix: `${config.store.prefix}.records` });
  try {
    // Rotation while running: the timer is unref'd and only checks; a due key is rotated under the folder's lock.
    keys.startMaintenance(config.signing.checkIntervalSeconds * 1000);
    const policy = readPolicy(config.policy.file, now());
    const metrics = new VerifierMetrics({ defaultMetrics: true });
    const readPems = (files: string[]) => files.map((f) => readFileSync(f, 'utf8'));
    const trust = defaultTrust({
      snpTestRootsPem: readPems(config.trust.snpTestRoots),
      tdxTestRootsPem: readPems(config.trust.tdxTestRoots),
      ...(config.trust.tdxCollateralDir ? { tdxCollateralDir: config.trust.tdxCollateralDir } : {}),
      ...(config.trust.snpCollateralDir ? { snpCollateralDir: config.trust.snpCollateralDir } : {}),
    });
    watchCollateral(trust, metrics, now);
    const verifier = new Verifier({
      store,
      keys,
      metrics,
      policy,
      policyRef: { id: policy.name, digest: policyDigest(policy) },
      trust,
      caches: { snpChains: new ChainCache(), tdxPck: new PckChainCache() },
      challengeMacKeys: [loadOrCreateSecret(config.challenge.macKeyFile, 'challenge MAC key')],
      challengeTtlSec: config.challenge.ttlSeconds,
      resultTtlSec: config.results.ttlSeconds,
      ...(config.keyBroker.enabled ? { masterSecret: loadMasterSecretOrCreate(config.keyBroker.masterSecretFile) } : {}),
      clusterId: config.clusterId,
      keyEpoch: config.keyBroker.epoch,
      issuer: `joinguard:${config.clusterId}`,
      now,
      ...(opts.testHooks ? { testHooks: opts.testHooks } : {}),
    });
    const app = await buildServer({
      verifier,
      metrics,
      tokens: config.auth.tokensFile ? loadTokens(config.auth.tokensFile) : [],
      mtlsRoles: config.auth.mtlsRoles,
      attestPerMinute: config.rateLimit.attestPerMinute,
      logger,
      ...(config.tls ? { https: { key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert), ...(config.tls.clientCa ? { ca: readFileSync(config.tls.clientCa) } : {}) } } : {}),
      ready: async () => {
        await store.logs();
        return true;
      },
    });
    let url = '';
    if (opts.listen !== false) {
      url = await app.listen({ host: config.listen.host, port: config.listen.port });
    }
    return {
      app,
      verifier,
      store,
      keys,
      metrics,
      url,
      close: async () => {
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

function loadMasterSecretOrCreate(path: string): Uint8Array {
  // The embedded default creates the secret on first start; an existing file is read with its mode checked.
  loadOrCreateSecret(path, 'disk-key master secret');
  return loadMasterSecret(path);
}
