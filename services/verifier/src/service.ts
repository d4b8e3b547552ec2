import { createHash, randomUUID } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';
import { JoinguardError, inputError, reject } from '@joinguard/core';
import {
  canonicalJson,
  checkChallenge,
  issueChallenge,
  jwkThumbprint,
  signResult,
  verifyResult,
  type AttestResponse,
  type AttestationResultClaims,
  type ChallengeResponse,
  type Evidence,
  type JsonValue,
  type KeyReleaseResponse,
  type NodeState,
  type RecordPage,
  type RecordQuery,
  type SignedRecord,
  type TeeKeyJwk,
} from '@joinguard/protocol';
import type { RecordStore } from '@joinguard/store';
import type { Policy } from '@joinguard/policy';
import { appraiseEvidence, type AppraisalContext, type AppraisalOutcome } from './appraise/index.js';
import { appraiseWithExpectedBinding, type ExpectedBinding } from './appraise/testing.js';
import { checkTeeKey, deriveDiskKey, sealToTeeKey } from './keybroker.js';
import type { SigningKeys } from './secrets.js';
import type { VerifierMetrics } from './metrics.js';

/** The log names of the records store: one hash chain per kind of decision. */
export const LOGS = { appraisal: 'appraisals', keyRelease: 'key-releases', revocation: 'revocations', policy: 'policy' } as const;

/**
 * Test-only hooks. They are an argument of the Verifier constructor and of startVerifier(), never a
 * configuration setting, so no file or environment variable of a deployed verifier can enable them.
 * They exist so that published evidence bundles, bound to their publisher's challenge rather than to a
 * nonce of ours, can travel through the real HTTP path.
 */
export interface TestHooks {
  /** true: accept this nonce without our MAC (it still goes through the replay set). */
  challengeOverride?: (nonce: string) => boolean;
  /** The binding values such a bundle was made with (Azure user-data, TPM extraData). */
  expectedBinding?: (evidence: Evidence) => ExpectedBinding | undefined;
}

export interface VerifierDeps {
  store: RecordStore;
  keys: SigningKeys;
  metrics: VerifierMetrics;
  policy: Policy;
  policyRef: { id: string; digest: string };
  trust: AppraisalContext['trust'];
  caches?: AppraisalContext['caches'];
  challengeMacKeys: Uint8Array[];
  challengeTtlSec: number;
  resultTtlSec: number;
  masterSecret?: Uint8Array;
  clusterId: string;
  keyEpoch: number;
  issuer: string;
  now?: () => Date;
  testHooks?: TestHooks;
}

/** The verifier's behaviour, independent of HTTP: every route handler is one call here. */
export class Verifier {
  constructor(private readonly d: VerifierDeps) {}

  private now(): Date {
    return this.d.now ? this.d.now() : new Date();
  }

  get store(): RecordStore {
    return this.d.store;
  }

  get policyRef(): { id: string; digest: string } {
    return this.d.policyRef;
  }

  challenge(): ChallengeResponse {
    const c = issueChallenge(this.d.challengeMacKeys, this.now(), this.d.challengeTtlSec * 1000);
    this.d.metrics.challenges.inc();
    return { nonce: c.nonce, expiresAt: c.expiresAt };
  }

  /**
   * Appraises one evidence bundle. The nonce must be ours (MAC), unexpired and unused (the store's replay set,
   * shared by replicas). Whatever the verdict, the appraisal is recorded before the reply; a result JWT is
   * signed for every verdict, and relying parties act only on `verdict: pass`.
   */
  async attest(evidence: Evidence): Promise<AttestResponse> {
    const started = process.hrtime.bigint();
    const now = this.now();
    let expiresAt: Date;
    if (this.d.testHooks?.challengeOverride?.(evidence.nonce) === true) {
      expiresAt = new Date(now.getTime() + this.d.challengeTtlSec * 1000);
    } else {
      expiresAt = checkChallenge(this.d.challengeMacKeys, evidence.nonce, now).expiresAt;
    }
    if (!(await this.d.store.consumeNonce(evidence.nonce, expiresAt))) {
      throw reject('PROTOCOL_NONCE_REPLAYED', 'this nonce has already been used; request a new challenge', {});
    }

    const ctx: AppraisalContext = {
      now,
      policy: this.d.policy,
      policyRef: this.d.policyRef,
      trust: this.d.trust,
      ...(this.d.caches ? { caches: this.d.caches } : {}),
    };
    const expected = this.d.testHooks?.expectedBinding?.(evidence);
    const outcome = expected ? await appraiseWithExpectedBinding(evidence, ctx, expected) : await appraiseEvidence(evidence, ctx);
    const { appraisal } = outcome;

    // Node state first, naming the record it is about to point to: the record's commit is the fsync that makes
    // both durable before the reply (a failed append leaves a state naming a record that does not exist, which
    // no key release accepts, and the next appraisal overwrites it).
    // updateNode is a compare-and-set, so an appraisal racing a revocation keeps the revocation.
    const recordId = randomUUID();
    await this.d.store.updateNode(appraisal.node, (previous) => ({
      revoked: previous?.revoked ?? false,
      ...(previous?.revokedAt ? { revokedAt: previous.revokedAt } : {}),
      ...(previous?.revokedReason ? { revokedReason: previous.revokedReason } : {}),
      lastVerdict: appraisal.verdict,
      lastVerifiedAt: now.toISOString(),
      lastRecordId: recordId,
      tee: appraisal.tee,
      ...(evidence.runtimeData.machine ? { machine: evidence.runtimeData.machine } : previous?.machine ? { machine: previous.machine } : {}),
    }));
    const record = await this.d.store.append({
      id: recordId,
      kind: 'appraisal',
      log: LOGS.appraisal,
      time: now.toISOString(),
      node: appraisal.node,
      tee: appraisal.tee,
      verdict: appraisal.verdict,
      purpose: appraisal.purpose,
      body: appraisalBody(evidence, outcome),
    });

    const iat = Math.floor(now.getTime() / 1000);
    const claims: AttestationResultClaims = {
      iss: this.d.issuer,
      sub: appraisal.node,
      jti: record.record.id,
      iat,
      exp: iat + this.d.resultTtlSec,
      verdict: appraisal.verdict,
      tee: appraisal.tee,
      purpose: appraisal.purpose,
      tcb: outcome.tcb,
      measurements: outcome.measurements,
      bindings: outcome.bindings,
      policy: appraisal.policy,
    };
    const key = this.d.keys.active;
    const result = await signResult(claims, key.privateKey, key.kid, { alg: key.alg });

    this.d.metrics.appraisals.inc({ tee: appraisal.tee, verdict: appraisal.verdict });
    this.d.metrics.appraisalSeconds.observe({ tee: appraisal.tee }, Number(process.hrtime.bigint() - started) / 1e9);
    if (appraisal.verdict === 'pass') this.d.metrics.nodeLastVerified.set({ node: appraisal.node }, now.getTime() / 1000);
    return { result, appraisal, recordId: record.record.id };
  }

  /**
   * Releases a node's disk key to the TEE key its passing attestation bound. Every decision, release or
   * refusal, is recorded; the refusal's code is what the caller sees.
   */
  async releaseDiskKey(name: string, bearer: string | undefined, body: { epoch?: number; teeKey?: TeeKeyJwk }): Promise<KeyReleaseResponse> {
    const now = this.now();
    let claims: AttestationResultClaims | undefined;
    try {
      if (!this.d.masterSecret) throw new JoinguardError('KEYS_DISABLED', 'key release is disabled on this verifier', {}, { kind: 'input' });
      if (!bearer) throw reject('KEYS_NO_RESULT', 'key release needs an attestation result as the Bearer token', {});
      claims = await verifyResult(bearer, this.d.keys.jwks(now), { now, issuer: this.d.issuer, maxAgeSec: this.d.resultTtlSec });
      if (claims.sub !== name) throw reject('KEYS_NODE_MISMATCH', `the attestation result is for node ${claims.sub}, not ${name}`, { resultNode: claims.sub, requested: name });
      if (claims.verdict !== 'pass') throw reject('KEYS_RESULT_FAILED', `the attestation result for ${name} has verdict ${claims.verdict}`, { verdict: claims.verdict });
      const node = await this.d.store.getNode(name);
      if (node?.revoked) throw reject('KEYS_NODE_REVOKED', `node ${name} is revoked${node.revokedReason ? `: ${node.revokedReason}` : ''}`, { revokedAt: node.revokedAt });
      const appraisal = await this.d.store.get(claims.jti);
      if (!appraisal || appraisal.record.kind !== 'appraisal' || appraisal.record.node !== name) {
        throw reject('KEYS_UNKNOWN_RESULT', `no appraisal record ${claims.jti} for node ${name}`, { jti: claims.jti });
      }
      if (node?.lastRecordId && node.lastVerdict === 'fail' && node.lastRecordId !== claims.jti) {
        throw reject('KEYS_NODE_FAILING', `node ${name} failed a later appraisal (${node.lastRecordId}); it must pass again`, { lastRecordId: node.lastRecordId });
      }
      const runtime = (appraisal.record.body.runtimeData ?? {}) as Record<string, unknown>;
      const machine = typeof runtime.machine === 'string' ? runtime.machine : undefined;
      if (!machine) throw reject('KEYS_UNKNOWN_MACHINE', `the attestation of ${name} names no machine; disk keys are bound to a machine`, {});
      const boundKey = checkTeeKey(runtime.teeKey as JWK);
      if ((await jwkThumbprint(boundKey)) !== claims.bindings.teeKeyThumbprint) {
        throw reject('KEYS_TEE_KEY_MISMATCH', 'the recorded teeKey does not match the result binding', {});
      }
      if (body.teeKey && (await jwkThumbprint(checkTeeKey(body.teeKey as JWK))) !== claims.bindings.teeKeyThumbprint) {
        throw reject('KEYS_TEE_KEY_MISMATCH', 'the teeKey in the request is not the one bound by the attestation', {});
      }
      const epoch = body.epoch ?? this.d.keyEpoch;
      if (epoch > this.d.keyEpoch) throw reject('KEYS_BAD_EPOCH', `epoch ${epoch} is ahead of the current epoch ${this.d.keyEpoch}`, { epoch });
      const key = deriveDiskKey(this.d.masterSecret, { clusterId: this.d.clusterId, machine, name, epoch });
      const jwe = await sealToTeeKey(key, boundKey, { node: name, epoch });
      key.fill(0);
      const rec = await this.d.store.append({
        kind: 'key-release',
        log: LOGS.keyRelease,
        time: now.toISOString(),
        node: name,
        verdict: 'pass',
        body: { outcome: 'released', appraisalId: claims.jti, machine, epoch, teeKeyThumbprint: claims.bindings.teeKeyThumbprint },
      });
      this.d.metrics.keyReleases.inc({ outcome: 'released' });
      return { name, epoch, jwe, recordId: rec.record.id };
    } catch (e) {
      const err = e instanceof JoinguardError ? e : new JoinguardError('INTERNAL', (e as Error).message, {}, { kind: 'internal', cause: e });
      if (err.kind !== 'internal') {
        await this.d.store
          .append({
            kind: 'key-release',
            log: LOGS.keyRelease,
            time: now.toISOString(),
            ...(isNodeName(name) ? { node: name } : {}),
            verdict: 'fail',
            body: { outcome: 'refused', code: err.code, message: err.message, ...(claims ? { appraisalId: claims.jti } : {}) },
          })
          .catch(() => undefined);
        this.d.metrics.keyReleases.inc({ outcome: 'refused' });
      }
      throw err;
    }
  }

  async revoke(name: string, reason: string, by: string): Promise<NodeState> {
    if (!isNodeName(name)) throw inputError('REQUEST_INVALID', `${name} is not a valid node name`, {});
    const now = this.now();
    // State before record, as in attest(): the revocation record's commit makes both durable before the reply.
    const state = await this.d.store.updateNode(name, (previous) => ({ ...(previous ?? {}), revoked: true, revokedAt: now.toISOString(), revokedReason: reason }));
    await this.d.store.append({ kind: 'revocation', log: LOGS.revocation, time: now.toISOString(), node: name, body: { reason, by } });
    return state;
  }

  async records(q: RecordQuery): Promise<RecordPage> {
    return this.d.store.query(q);
  }

  async record(id: string): Promise<SignedRecord | undefined> {
    return this.d.store.get(id);
  }

  async nodes(): Promise<NodeState[]> {
    return this.d.store.listNodes();
  }

  jwks(): JSONWebKeySet {
    return this.d.keys.jwks(this.now());
  }

  allKeys(): JSONWebKeySet {
    return this.d.keys.allKeys();
  }
}

const NODE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
function isNodeName(s: string): boolean {
  return s.length <= 253 && NODE_RE.test(s);
}

/**
 * What an appraisal record keeps: the whole evidence (so `audit verify --reappraise` can run it again), its
 * digest, the binding digest, every check and the policy. The event log is the bulk; it stays inline so a
 * record is self-contained.
 */
function appraisalBody(evidence: Evidence, o: AppraisalOutcome): { [k: string]: JsonValue } {
  // The evidence is parsed JSON that passed the schema, so it goes in as it is (the store re-checks that a
  // body is plain JSON); the engine's own objects may hold undefined members, which the copies drop.
  const evidenceJson = evidence as unknown as JsonValue;
  return {
    evidenceSha256: createHash('sha256').update(canonicalJson(evidenceJson)).digest('hex'),
    evidence: evidenceJson,
    runtimeData: evidence.runtimeData as unknown as JsonValue,
    bindingDigest: o.bindingDigest,
    checks: JSON.parse(JSON.stringify(o.appraisal.checks)) as JsonValue,
    policy: o.appraisal.policy as unknown as JsonValue,
    tcb: JSON.parse(JSON.stringify(o.tcb)) as JsonValue,
    measurements: o.measurements,
    ...(o.claims ? { claims: JSON.parse(JSON.stringify(o.claims)) as JsonValue } : {}),
  };
}

