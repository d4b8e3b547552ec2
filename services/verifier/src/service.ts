import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { JSONWebKeySet, JWK } from 'jose';
import { JoinguardError, digest, inputError, reject, uuidV7 } from '@joinguard/core';
import {
  assertJsonValue,
  checkChallenge,
  issueChallenge,
  jwkThumbprint,
  recordedEvidence,
  signResult,
  verifyResult,
  type AttestResponse,
  type AuditRecord,
  type AttestationResultClaims,
  type ChallengeResponse,
  type Evidence,
  type JsonValue,
  type KeyReleaseResponse,
  type NodeState,
  type PolicyChangeResponse,
  type PolicyDocumentResponse,
  type PolicyIssueInfo,
  type PolicyPoolInfo,
  type PolicySource,
  type RecordedEvidence,
  type RecordPage,
  type RecordQuery,
  type SignedRecord,
  type TeeKeyJwk,
  type UnpinRequest,
} from '@joinguard/protocol';
import { allRecords, type NodeStateInput, type RecordStore } from '@joinguard/store';
import { loadPolicy, policyDigest, referenceEntries, validity, type Policy, type ReferenceValue } from '@joinguard/policy';
import { asJson } from './appraise/checks.js';
import { appraiseEvidence, type AppraisalContext, type AppraisalOutcome } from './appraise/index.js';
import { appraiseWithExpectedBinding, type ExpectedBinding } from './appraise/testing.js';
import { checkTeeKey, deriveDiskKey, sealToTeeKey } from './keybroker.js';
import { writePrivateFile, type SigningKeys } from './secrets.js';
import type { VerifierMetrics } from './metrics.js';

/** The log names of the records store: one hash chain per kind of decision. */
export const LOGS = { appraisal: 'appraisals', keyRelease: 'key-releases', revocation: 'revocations', policy: 'policy', akPin: 'ak-pins' } as const;

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

/**
 * A node pool and the policy in force for it. Pools are tried in order; the default pool (no `nodes`) comes
 * last and takes every node no other pool matches.
 */
export interface PolicyPool {
  name: string;
  /** the whole-name match (`^(?:nodes)$`); absent for the default pool */
  nodes?: RegExp;
  /** `nodes` as configured */
  nodesPattern?: string;
  policy: Policy;
  ref: { id: string; digest: string };
  source: PolicySource;
  /** the configured file, also while an api policy replaces it */
  file?: string;
  /** digest of the configured policy (its file, or the strict default); an api policy names the one it replaced */
  configDigest: string;
  /** where the configured policy comes from */
  configSource: 'file' | 'default';
  updatedAt?: string;
  updatedBy?: string;
}

/** What a policy-change record says happened (`put`, `reference-value-added`, …, `start`). */
interface PolicyChange {
  change: string;
  referenceValue?: string;
}

/** Who changed a policy: a token's name or a client certificate's CN. */
export interface Actor {
  name: string;
  via: 'token' | 'mtls' | 'start';
}

/**
 * A policy set through the admin routes, kept as `<policyDir>/<pool>.json` (0600, written atomically) so that
 * a restart keeps it. `configDigest` is the configured policy it replaced: when the configured file has
 * changed since, the file is the newer decision and wins at start.
 */
export interface PersistedPolicy {
  v: 1;
  pool: string;
  digest: string;
  configDigest: string;
  updatedAt: string;
  updatedBy: string;
  policy: Policy;
}

export function policyStatePath(dir: string, pool: string): string {
  return join(dir, `${pool}.json`);
}

export interface VerifierDeps {
  store: RecordStore;
  keys: SigningKeys;
  metrics: VerifierMetrics;
  /** in match order, the default pool last */
  pools: PolicyPool[];
  /** where policies set by the admin routes are kept; none: they live in memory until the process ends */
  policyDir?: string;
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
  /** where faults that do not change a reply are reported (a refusal whose record could not be written) */
  log?: { error(o: object, msg: string): void };
  testHooks?: TestHooks;
}

/** The verifier's behaviour, independent of HTTP: every route handler is one call here. */
export class Verifier {
  private pools: PolicyPool[];
  /** policy changes run one at a time, so each record names the digest it replaced */
  private policyQueue: Promise<unknown> = Promise.resolve();
  /** the last seq of the policy log that syncPolicies has read */
  private policyLogSeq = 0;

  constructor(private readonly d: VerifierDeps) {
    if (d.pools.length === 0 || d.pools.at(-1)!.nodes !== undefined) throw new JoinguardError('INTERNAL', 'the last policy pool must be the default pool', {}, { kind: 'internal' });
    this.pools = [...d.pools];
  }

  private now(): Date {
    return this.d.now ? this.d.now() : new Date();
  }

  get store(): RecordStore {
    return this.d.store;
  }

  /** The default pool's policy (every node no pool matches). */
  get policyRef(): { id: string; digest: string } {
    return this.pools.at(-1)!.ref;
  }

  /** The pool whose `nodes` matches the node name first, else the default pool. */
  poolFor(nodeName: string): PolicyPool {
    // Node names are schema-checked (at most 253 characters) before they get here.
    for (const p of this.pools) if (!p.nodes || p.nodes.test(nodeName)) return p;
    return this.pools.at(-1)!;
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
    // Whatever the verdict, the evidence goes into a record, which only well-formed JSON can (JSON escapes can
    // spell lone UTF-16 surrogates in free-form fields such as providerId): refused before the nonce is used.
    try {
      assertJsonValue(evidence, '$');
    } catch (e) {
      const path = (e as JoinguardError).details?.path;
      throw inputError('REQUEST_INVALID', `the evidence cannot be recorded: ${(e as Error).message}`, { path });
    }
    let expiresAt: Date;
    if (this.d.testHooks?.challengeOverride?.(evidence.nonce) === true) {
      expiresAt = new Date(now.getTime() + this.d.challengeTtlSec * 1000);
    } else {
      expiresAt = checkChallenge(this.d.challengeMacKeys, evidence.nonce, now).expiresAt;
    }
    if (!(await this.d.store.consumeNonce(evidence.nonce, expiresAt))) {
      throw reject('PROTOCOL_NONCE_REPLAYED', 'this nonce has already been used; request a new challenge', {});
    }

    // The pool comes from the node name the evidence binds: a result is only ever trusted for that name.
    const pool = this.poolFor(evidence.runtimeData.nodeName);
    const ctx: AppraisalContext = {
      now,
      policy: pool.policy,
      policyRef: pool.ref,
      trust: this.d.trust,
      ...(this.d.caches ? { caches: this.d.caches } : {}),
    };
    const expected = this.d.testHooks?.expectedBinding?.(evidence);
    const appraiseUnder = (pinnedAkSha256: string | null | undefined) => {
      const c = pinnedAkSha256 === undefined ? ctx : { ...ctx, pinnedAkSha256 };
      return expected ? appraiseWithExpectedBinding(evidence, c, expected) : appraiseEvidence(evidence, c);
    };
    const recordId = uuidV7(now.getTime());
    const at = now.toISOString();
    // A pool that pins AKs judges the evidence against the AK the node is pinned to (rule tpm.akPinned).
    const pinning = pool.policy.tpm?.pinAk === true;
    const pinned = pinning ? await this.pinnedAk(evidence.runtimeData.nodeName) : undefined;
    let outcome = await appraiseUnder(pinned);
    if (pinning && pinned === null && outcome.appraisal.verdict === 'pass' && outcome.akPublicSha256) {
      // The first pass of a node pins its AK. The pin is taken (compare-and-set) before the result is signed and
      // the record written: of two first appraisals with different AKs racing, one takes the pin and the other,
      // finding it, is judged again against it and fails. Should the record then not be written, the node stays
      // pinned to an AK that passed (its retry passes again); an admin's unpin clears it.
      const took = await this.takePin(outcome.appraisal.node, outcome.akPublicSha256, at, recordId);
      if (took !== outcome.akPublicSha256) outcome = await appraiseUnder(took);
    }
    const { appraisal } = outcome;

    // The result is signed before the record and the state that name it are stored, so that neither is ever
    // left without a reply that names it.
    const iat = Math.floor(now.getTime() / 1000);
    const claims: AttestationResultClaims = {
      iss: this.d.issuer,
      sub: appraisal.node,
      jti: recordId,
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

    // The node's state follows a pass, and a failure only when the evidence itself verified (a real CVM, bound
    // to this request, claimed the name): otherwise anyone could fetch a challenge and send junk naming a node
    // to have its key releases refused as failing. The order of the two writes is the safe one for the verdict:
    // a pass is recorded before the state names it, a failure's state is written before its record, so a
    // write that fails in between never leaves a node looking better than its last appraisal. The reply waits
    // for both; the record's commit is fsynced, and so covers a failure's state written before it (a pass's
    // state is covered by the next commit). updateNode is a compare-and-set: an appraisal racing a revocation
    // keeps the revocation, and one racing a later appraisal of the same node leaves the later one's state.
    const updateState = () =>
      this.d.store.updateNode(appraisal.node, (previous) => {
        if (previous?.lastVerifiedAt !== undefined && previous.lastVerifiedAt > at) return previous;
        return {
          revoked: previous?.revoked ?? false,
          ...(previous?.revokedAt ? { revokedAt: previous.revokedAt } : {}),
          ...(previous?.revokedReason ? { revokedReason: previous.revokedReason } : {}),
          // The pin stays as it is now (taken above, or cleared by an admin meanwhile): an appraisal never sets it here.
          ...pinOf(previous),
          lastVerdict: appraisal.verdict,
          lastVerifiedAt: at,
          lastRecordId: recordId,
          tee: appraisal.tee,
          ...(evidence.runtimeData.machine ? { machine: evidence.runtimeData.machine } : previous?.machine ? { machine: previous.machine } : {}),
        };
      });
    const kept = recordedEvidence(evidence);
    const appendRecord = () =>
      this.d.store.append({
        id: recordId,
        kind: 'appraisal',
        log: LOGS.appraisal,
        time: at,
        node: appraisal.node,
        tee: appraisal.tee,
        verdict: appraisal.verdict,
        purpose: appraisal.purpose,
        body: appraisalBody(kept, outcome, pool.name),
        blobs: kept.blobs,
      });
    let record: Awaited<ReturnType<typeof appendRecord>>;
    if (appraisal.verdict === 'pass') {
      record = await appendRecord();
      await updateState();
    } else {
      if (outcome.evidenceVerified) await updateState();
      record = await appendRecord();
    }

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
      if (this.poolFor(name).policy.tpm?.pinAk === true) {
        // The result's verdict judged the AK against the pin of its time; the pin may have changed since (an
        // admin unpinned the node and another AK was pinned): only the AK the node is pinned to now gets keys.
        const ak = recordedAk(appraisal.record.body);
        if (!node?.pinnedAkSha256 || ak !== node.pinnedAkSha256) {
          throw reject('KEYS_AK_NOT_PINNED', node?.pinnedAkSha256 ? `the attestation of ${name} was made with AK ${ak ?? 'unknown'}, not the AK ${node.pinnedAkSha256} the node is pinned to` : `node ${name} is pinned to no AK (unpinned since): it must attest again`, {
            expected: node?.pinnedAkSha256 ?? null,
            actual: ak ?? null,
          });
        }
      }
      const runtime = (appraisal.record.body.runtimeData ?? {}) as Record<string, unknown>;
      const machine = typeof runtime.machine === 'string' ? runtime.machine : undefined;
      if (!machine) throw reject('KEYS_UNKNOWN_MACHINE', `the attestation of ${name} names no machine; disk keys are bound to a machine`, {});
      const boundKey = checkTeeKey(runtime.teeKey as JWK);
      const boundThumbprint = await jwkThumbprint(boundKey);
      if (boundThumbprint !== claims.bindings.teeKeyThumbprint) {
        throw reject('KEYS_TEE_KEY_MISMATCH', 'the recorded teeKey does not match the result binding', {});
      }
      if (body.teeKey && (await jwkThumbprint(checkTeeKey(body.teeKey as JWK))) !== boundThumbprint) {
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
        body: { outcome: 'released', appraisalId: claims.jti, machine, epoch, teeKeyThumbprint: boundThumbprint },
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
          .catch((recordError: unknown) => {
            // The refusal stands (nothing was released); what is lost is its record, which the log reports.
            this.d.log?.error({ err: recordError, node: name, code: err.code }, `the record of a refused key release for ${name} (${err.code}) could not be written`);
          });
        this.d.metrics.keyReleases.inc({ outcome: 'refused' });
      }
      throw err;
    }
  }

  async revoke(name: string, reason: string, by: string): Promise<NodeState> {
    if (!isNodeName(name)) throw inputError('REQUEST_INVALID', `${name} is not a valid node name`, {});
    const now = this.now();
    // State before record (the safe order for a change that makes the node look worse, as for a failed
    // appraisal in attest()): the revocation record's commit makes both durable before the reply.
    const state = await this.d.store.updateNode(name, (previous) => ({ ...(previous ?? {}), revoked: true, revokedAt: now.toISOString(), revokedReason: reason }));
    await this.d.store.append({ kind: 'revocation', log: LOGS.revocation, time: now.toISOString(), node: name, body: { reason, by } });
    return state;
  }

  /**
   * Clears the AK a node is pinned to (its machine was replaced on purpose): its next passing appraisal pins the
   * AK it comes with. With `akPublicSha256` the pin is cleared only while it is that one, so an admin clears the
   * pin they looked at. Recorded (kind ak-unpin, log ak-pins) before the state changes, the safe order for a
   * change that loosens: a pin never goes without its record (a state write that fails after it leaves the
   * node pinned, and the admin tries again).
   */
  async unpin(name: string, req: UnpinRequest, by: string): Promise<NodeState> {
    if (!isNodeName(name)) throw inputError('REQUEST_INVALID', `${name} is not a valid node name`, {});
    const now = this.now();
    const current = await this.d.store.getNode(name);
    if (!current) throw new JoinguardError('NOT_FOUND', `no node ${name}`, { name }, { kind: 'input' });
    const previous = current.pinnedAkSha256;
    if (previous === undefined) throw inputError('NODE_NOT_PINNED', `node ${name} is pinned to no AK`, { name });
    if (req.akPublicSha256 !== undefined && req.akPublicSha256 !== previous) {
      throw inputError('NODE_PIN_CHANGED', `node ${name} is pinned to AK ${previous}, not ${req.akPublicSha256}: nothing was unpinned`, { name, expected: req.akPublicSha256, actual: previous });
    }
    await this.d.store.append({
      kind: 'ak-unpin',
      log: LOGS.akPin,
      time: now.toISOString(),
      node: name,
      body: {
        reason: req.reason,
        by,
        akPublicSha256: previous,
        ...(current.pinnedAkAt ? { pinnedAt: current.pinnedAkAt } : {}),
        ...(current.pinnedAkRecordId ? { pinnedByRecord: current.pinnedAkRecordId } : {}),
      },
    });
    // Only the pin the record names is cleared: one taken since (after another unpin) stays.
    return this.d.store.updateNode(name, (state) => {
      if (state?.pinnedAkSha256 !== previous) return state ?? { revoked: false };
      const next: Partial<NodeState> = { ...state };
      for (const k of ['name', 'pinnedAkSha256', 'pinnedAkAt', 'pinnedAkRecordId'] as const) delete next[k];
      return next as NodeStateInput;
    });
  }

  /** The AK a node is pinned to, or null when none (or no state) yet. */
  private async pinnedAk(name: string): Promise<string | null> {
    // A name the store cannot hold is refused by the appraisal's decoding; it has no state to read.
    if (!isNodeName(name)) return null;
    return (await this.d.store.getNode(name))?.pinnedAkSha256 ?? null;
  }

  /** Pins `ak` unless the node is pinned already; returns the AK the node is pinned to afterwards. */
  private async takePin(name: string, ak: string, at: string, recordId: string): Promise<string> {
    const state = await this.d.store.updateNode(name, (previous) => {
      if (previous?.pinnedAkSha256 !== undefined) return previous;
      return { ...(previous ?? { revoked: false }), pinnedAkSha256: ak, pinnedAkAt: at, pinnedAkRecordId: recordId };
    });
    return state.pinnedAkSha256!;
  }

  async records(q: RecordQuery): Promise<RecordPage> {
    return this.d.store.query(q);
  }

  async record(id: string): Promise<SignedRecord | undefined> {
    return this.d.store.get(id);
  }

  async blob(sha256: string): Promise<Uint8Array | undefined> {
    return this.d.store.getBlob(sha256);
  }

  async nodes(): Promise<NodeState[]> {
    return this.d.store.listNodes();
  }

  jwks(): JSONWebKeySet {
    return this.d.keys.jwks(this.now());
  }

  // ---- policies: per node pool, changed by admins, every change recorded

  /** Every pool in match order (the default last), its policy in force and its reference values' validity now. */
  policies(): PolicyPoolInfo[] {
    const now = this.now();
    return this.pools.map((p) => poolInfo(p, now));
  }

  policyDocument(pool: string): PolicyDocumentResponse {
    const p = this.pool(pool);
    return { ...poolInfo(p, this.now()), document: plainJson(p.policy) as Record<string, unknown> };
  }

  /**
   * Replaces a pool's policy with `doc` (YAML/JSON text or parsed JSON), after the checks of `joinguard policy
   * check` (schema, then semantics at the verifier's now). The policy-change record is durable, and the new
   * policy persisted, before any appraisal uses it. The same policy again changes and records nothing.
   */
  async putPolicy(pool: string, doc: unknown, by: Actor): Promise<PolicyChangeResponse> {
    return this.editPolicy(pool, by, () => ({ doc, what: { change: 'put' } }));
  }

  /** Adds one reference value to a pool's policy (rolling out N+1): the same checks and record as a PUT. */
  async addReferenceValue(pool: string, ref: unknown, by: Actor): Promise<PolicyChangeResponse> {
    return this.editPolicy(pool, by, (p) => {
      if (ref === null || typeof ref !== 'object' || Array.isArray(ref)) throw inputError('REQUEST_INVALID', 'the body must be one reference value (an object with id and version)', {});
      const r = ref as { id?: unknown; version?: unknown };
      const name = typeof r.id === 'string' && typeof r.version === 'string' ? `${r.id}@${r.version}` : undefined;
      return { doc: withReferenceValues(p.policy, [...(p.policy.referenceValues ?? []), ref]), what: { change: 'reference-value-added', ...(name ? { referenceValue: name } : {}) } };
    });
  }

  /**
   * Removes reference value `id@version` from a pool's policy (retiring N). Refused when it is the last one that
   * constrains some claim: the rule would then be skipped rather than enforced, which loosens the policy; drop
   * a rule deliberately with a PUT of the whole policy.
   */
  async removeReferenceValue(pool: string, idAtVersion: string, by: Actor): Promise<PolicyChangeResponse> {
    return this.editPolicy(pool, by, (p) => {
      const refs = p.policy.referenceValues ?? [];
      const hits = refs.filter((r) => `${r.id}@${r.version}` === idAtVersion);
      if (hits.length === 0) throw new JoinguardError('NOT_FOUND', `pool ${pool} has no reference value ${idAtVersion}`, { pool, referenceValue: idAtVersion }, { kind: 'input' });
      if (hits.length > 1) throw inputError('REQUEST_INVALID', `${idAtVersion} names more than one reference value (an id or version contains "@"); change the policy with a PUT`, { pool });
      const rest = refs.filter((r) => r !== hits[0]);
      // What a PUT only warns about (POLICY_RULE_UNENFORCED), removing one reference value refuses.
      const orphaned = unenforced(refs, rest);
      if (orphaned.length > 0) {
        throw inputError('POLICY_REFERENCE_LAST', `${idAtVersion} is the last reference value for ${orphaned.join(', ')}: without it those rules would be skipped, not enforced; add its successor first, or PUT a policy without the rule`, {
          pool,
          referenceValue: idAtVersion,
          keys: orphaned,
        });
      }
      return { doc: withReferenceValues(p.policy, rest), what: { change: 'reference-value-removed', referenceValue: idAtVersion } };
    });
  }

  /**
   * Follows the policy log, which replicas share through the store: the newest admin change of a pool (a PUT or
   * a reference-value edit at any replica) comes into force here too, if it was made against the configured
   * policy this replica has (its `configDigest`); a configuration changed since wins, as at start. Start records
   * only say what a replica had. Run at start, before the start records, and on a timer. Returns the pools whose
   * policy changed.
   */
  async syncPolicies(): Promise<string[]> {
    return this.serialize(async () => {
      const newest = new Map<string, AuditRecord>();
      let top = this.policyLogSeq;
      for await (const { record } of allRecords((q) => this.d.store.query(q), { log: LOGS.policy, kind: 'policy-change', limit: 1000 })) {
        if (record.seq <= this.policyLogSeq) continue;
        top = Math.max(top, record.seq);
        const b = record.body as { pool?: unknown; via?: unknown };
        if (typeof b.pool !== 'string' || b.via === 'start') continue;
        if ((newest.get(b.pool)?.seq ?? 0) < record.seq) newest.set(b.pool, record);
      }
      this.policyLogSeq = top;
      const changed: string[] = [];
      for (const [name, record] of newest) {
        const p = this.pools.find((x) => x.name === name);
        const b = record.body as { newDigest?: unknown; configDigest?: unknown; by?: unknown };
        if (!p || b.newDigest === p.ref.digest || b.configDigest !== p.configDigest) continue;
        // A document this verifier cannot use leaves its policy as it is (the record stays for audit).
        const recorded = recordedPolicy(record);
        if (!recorded) continue;
        const next = withPolicy(p, recorded.policy, recorded.digest, record.time, typeof b.by === 'string' ? b.by : 'another replica');
        this.keepPolicy(next);
        this.pools = this.pools.map((x) => (x === p ? next : x));
        changed.push(name);
      }
      return changed;
    });
  }

  /**
   * Keeps `next`'s policy in the data folder when it came from the admin routes, or removes the kept copy when
   * it is the configured one again. Returns how to take that back.
   */
  private keepPolicy(next: PolicyPool): (() => void) | undefined {
    if (!this.d.policyDir) return undefined;
    const path = policyStatePath(this.d.policyDir, next.name);
    const before = existsSync(path) ? readFileSync(path) : undefined;
    if (next.source !== 'api') {
      if (before) unlinkSync(path);
    } else {
      const state: PersistedPolicy = { v: 1, pool: next.name, digest: next.ref.digest, configDigest: next.configDigest, updatedAt: next.updatedAt!, updatedBy: next.updatedBy!, policy: next.policy };
      writePrivateFile(path, JSON.stringify(state, null, 2) + '\n');
    }
    return () => (before ? writePrivateFile(path, before) : existsSync(path) && unlinkSync(path));
  }

  /**
   * At start: for each pool whose policy in force differs from the last policy-change record of that pool,
   * appends one, so the audit trail shows which policy was in force from when. Returns the records appended.
   */
  async recordPoliciesInForce(): Promise<SignedRecord[]> {
    return this.serialize(async () => {
      const last = new Map<string, string>();
      for await (const { record } of allRecords((q) => this.d.store.query(q), { log: LOGS.policy, kind: 'policy-change', limit: 1000 })) {
        const b = record.body as { pool?: unknown; newDigest?: unknown };
        if (typeof b.pool === 'string' && typeof b.newDigest === 'string') last.set(b.pool, b.newDigest);
      }
      const out: SignedRecord[] = [];
      for (const p of this.pools) {
        const before = last.get(p.name);
        if (before === p.ref.digest) continue;
        out.push(await this.appendPolicyRecord(p, p, before, { name: 'verifier-start', via: 'start' }, { change: 'start' }));
      }
      return out;
    });
  }

  private pool(name: string): PolicyPool {
    const p = this.pools.find((x) => x.name === name);
    if (!p) throw new JoinguardError('NOT_FOUND', `no node pool ${name} (pools: ${this.pools.map((x) => x.name).join(', ')})`, { pool: name }, { kind: 'input' });
    return p;
  }

  /** One policy change, queued behind the others: `edit` turns the pool as it is now into the document to check. */
  private editPolicy(pool: string, by: Actor, edit: (p: PolicyPool) => { doc: unknown; what: PolicyChange }): Promise<PolicyChangeResponse> {
    return this.serialize(() => {
      const p = this.pool(pool);
      const { doc, what } = edit(p);
      return this.changePolicy(p, doc, by, what);
    });
  }

  private serialize<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.policyQueue.then(fn, fn);
    this.policyQueue = run.catch(() => undefined);
    return run;
  }

  private async changePolicy(p: PolicyPool, doc: unknown, by: Actor, what: PolicyChange): Promise<PolicyChangeResponse> {
    const now = this.now();
    const { policy, warnings } = loadPolicy(doc, now);
    if (p.nodes && policy.nodePool !== undefined && policy.nodePool !== p.name) {
      throw inputError('POLICY_POOL_MISMATCH', `the policy is for node pool ${policy.nodePool}, not ${p.name}`, { pool: p.name, nodePool: policy.nodePool, errors: [{ path: '$.nodePool', code: 'POLICY_POOL_MISMATCH', message: `must be ${p.name} (or absent)` }] });
    }
    const digest = policyDigest(policy);
    const issues: PolicyIssueInfo[] = [...warnings, ...unenforcedKeys(p.policy, policy)];
    const previous = { ...p.ref };
    if (digest === p.ref.digest) return { pool: p.name, changed: false, policy: previous, previous, warnings: issues };

    const next = withPolicy(p, policy, digest, now.toISOString(), by.name);
    // Persist, then record, then use: no appraisal runs under a policy without its record, and a failed append
    // takes the persisted file back. (Should even that fail, the start-up check records what is in force.)
    const undo = this.keepPolicy(next);
    let record: SignedRecord;
    try {
      record = await this.appendPolicyRecord(p, next, p.ref.digest, by, what);
    } catch (e) {
      try {
        undo?.();
      } catch {
        // the start-up check will record the policy that is in force
      }
      throw e;
    }
    this.pools = this.pools.map((x) => (x === p ? next : x));
    return { pool: p.name, changed: true, policy: { ...next.ref }, previous, recordId: record.record.id, warnings: issues };
  }

  private appendPolicyRecord(old: PolicyPool, next: PolicyPool, oldDigest: string | undefined, by: Actor, what: PolicyChange): Promise<SignedRecord> {
    return this.d.store.append({
      kind: 'policy-change',
      log: LOGS.policy,
      time: this.now().toISOString(),
      body: {
        pool: next.name,
        change: what.change,
        ...(what.referenceValue ? { referenceValue: what.referenceValue } : {}),
        source: next.source,
        ...(next.file ? { file: next.file } : {}),
        ...(next.nodesPattern ? { nodes: next.nodesPattern } : {}),
        by: by.name,
        via: by.via,
        ...(oldDigest ? { oldDigest } : {}),
        ...(oldDigest && old !== next ? { oldPolicyId: old.ref.id } : {}),
        newDigest: next.ref.digest,
        policyId: next.ref.id,
        // The configured policy the change was made against: a replica adopts the change only while its own
        // configuration is that one (a configuration changed since wins, as it does at this replica's start).
        configDigest: next.configDigest,
        policy: plainJson(next.policy),
      },
    });
  }

  allKeys(): JSONWebKeySet {
    return this.d.keys.allKeys();
  }
}

/** A copy as plain JSON (undefined members dropped), as the records store requires; throws where JSON cannot go. */
function plainJson(x: unknown): JsonValue {
  const j = asJson(x);
  if (j === undefined) throw new JoinguardError('INTERNAL', 'a value meant for a record is not JSON (a cycle, or nesting too deep)', {}, { kind: 'internal' });
  return j;
}

/**
 * `p` with `policy` in force, set by `by` at `at`. A policy equal to the configured one is the configured one
 * again (no kept copy, no one who set it).
 */
function withPolicy(p: PolicyPool, policy: Policy, digest: string, at: string, by: string): PolicyPool {
  const backToConfig = digest === p.configDigest;
  const next: PolicyPool = { ...p, policy, ref: { id: policy.name, digest }, source: backToConfig ? p.configSource : 'api' };
  delete next.updatedAt;
  delete next.updatedBy;
  if (!backToConfig) {
    next.updatedAt = at;
    next.updatedBy = by;
  }
  return next;
}

/**
 * The policy a `policy-change` record put in force: its document, checked as of the record's time (a reference
 * value may have expired since), and only if it still has the digest the record names. Undefined otherwise.
 */
export function recordedPolicy(record: AuditRecord): { policy: Policy; digest: string } | undefined {
  const b = record.body as { newDigest?: unknown; policy?: unknown };
  if (record.kind !== 'policy-change' || typeof b.newDigest !== 'string' || b.policy === undefined) return undefined;
  let policy: Policy;
  try {
    policy = loadPolicy(b.policy, new Date(record.time)).policy;
  } catch {
    return undefined;
  }
  return policyDigest(policy) === b.newDigest ? { policy, digest: b.newDigest } : undefined;
}

function poolInfo(p: PolicyPool, now: Date): PolicyPoolInfo {
  return {
    name: p.name,
    ...(p.nodesPattern !== undefined ? { nodes: p.nodesPattern } : {}),
    default: p.nodes === undefined,
    policy: { ...p.ref },
    source: p.source,
    ...(p.file ? { file: p.file } : {}),
    ...(p.updatedAt ? { updatedAt: p.updatedAt } : {}),
    ...(p.updatedBy ? { updatedBy: p.updatedBy } : {}),
    referenceValues: (p.policy.referenceValues ?? []).map((r: ReferenceValue) => ({
      id: r.id,
      version: r.version,
      ...(r.description !== undefined ? { description: r.description } : {}),
      ...(r.notBefore !== undefined ? { notBefore: r.notBefore } : {}),
      ...(r.expires !== undefined ? { expires: r.expires } : {}),
      validity: validity(r, now),
      keys: referenceEntries(r).map(([k]) => k),
    })),
  };
}

/** The policy as plain JSON with other reference values: the draft of a reference-value change. */
function withReferenceValues(policy: Policy, referenceValues: unknown[]): Record<string, unknown> {
  return { ...(plainJson(policy) as Record<string, unknown>), referenceValues };
}

/** The claims some reference value constrains. */
function referenceKeys(refs: readonly ReferenceValue[]): Set<string> {
  return new Set(refs.flatMap((r) => referenceEntries(r).map(([k]) => k)));
}

/** Claims constrained by the old reference values and by none of the new ones: their rules are now skipped. */
function unenforced(old: readonly ReferenceValue[], next: readonly ReferenceValue[]): string[] {
  const still = referenceKeys(next);
  return [...referenceKeys(old)].filter((k) => !still.has(k));
}

function unenforcedKeys(old: Policy, next: Policy): PolicyIssueInfo[] {
  return unenforced(old.referenceValues ?? [], next.referenceValues ?? []).map((k) => ({
    path: '$.referenceValues',
    code: 'POLICY_RULE_UNENFORCED',
    message: `no reference value constrains ${k} any more: its rule is skipped, not enforced`,
  }));
}

/** Reads a policy kept by the admin routes; throws CONFIG_POLICY_STATE_INVALID naming the file when it is unusable. */
export function readPolicyState(path: string, pool: string, now: Date): PersistedPolicy | undefined {
  if (!existsSync(path)) return undefined;
  const bad = (why: string, details: Record<string, unknown> = {}) =>
    inputError('CONFIG_POLICY_STATE_INVALID', `the policy of pool ${pool} kept in ${path} ${why}; remove the file to use the configured policy`, { path, pool, ...details });
  if ((statSync(path).mode & 0o022) !== 0) throw bad('is writable by group or others (it must be 0600)');
  let state: PersistedPolicy;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as PersistedPolicy;
  } catch (e) {
    throw bad(`cannot be read: ${(e as Error).message}`);
  }
  if (state?.v !== 1 || state.pool !== pool || typeof state.digest !== 'string' || typeof state.configDigest !== 'string' || typeof state.updatedAt !== 'string' || typeof state.updatedBy !== 'string') {
    throw bad('is not a policy state file of this verifier');
  }
  let policy: Policy;
  try {
    policy = loadPolicy(state.policy, now).policy;
  } catch (e) {
    throw bad(`is not usable now: ${(e as Error).message}`, e instanceof JoinguardError ? { errors: e.details.errors } : {});
  }
  if (policyDigest(policy) !== state.digest) throw bad('does not match its recorded digest (edited by hand?)');
  return { ...state, policy };
}

/** A node state's pin members, as they are. */
function pinOf(state: NodeState | undefined): Pick<NodeState, 'pinnedAkSha256' | 'pinnedAkAt' | 'pinnedAkRecordId'> {
  return {
    ...(state?.pinnedAkSha256 !== undefined ? { pinnedAkSha256: state.pinnedAkSha256 } : {}),
    ...(state?.pinnedAkAt !== undefined ? { pinnedAkAt: state.pinnedAkAt } : {}),
    ...(state?.pinnedAkRecordId !== undefined ? { pinnedAkRecordId: state.pinnedAkRecordId } : {}),
  };
}

/** hex SHA-256 of the tpm.akPublic an appraisal record holds (its evidence is kept inline but for blobs). */
function recordedAk(body: Record<string, unknown>): string | undefined {
  const ak = (body.evidence as { tpm?: { akPublic?: unknown } } | undefined)?.tpm?.akPublic;
  if (typeof ak !== 'string') return undefined;
  return digest('sha256', Buffer.from(ak, 'base64'), 'hex');
}

const NODE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
function isNodeName(s: string): boolean {
  return s.length <= 253 && NODE_RE.test(s);
}

/**
 * What an appraisal record keeps: the whole evidence (so `audit verify --reappraise` can run it again), the
 * binding digest, every check (with the expected and actual values the policy compared), the TCB and the
 * policy. The event log and the certificates, which every re-attestation repeats, are named by digest and
 * stored once as blobs (recordedEvidence); the record's signature and chain cover the digests. The verified
 * claims are not kept: they are a function of the evidence (`joinguard policy dry-run --store` derives them
 * again, as --reappraise does), and they were a quarter of every record, paid for on each appraisal by its
 * canonicalisation, signing and durable write. Nor are the result's `measurements`, a view of the claims.
 */
function appraisalBody(kept: RecordedEvidence, o: AppraisalOutcome, pool: string): { [k: string]: JsonValue } {
  // The evidence is parsed JSON that passed the schema, so it goes in as it is (the store re-checks that a
  // body is plain JSON), its event log and certificates by digest; the engine's own objects may hold undefined members, which
  // the copies drop.
  return {
    evidence: kept.evidence as unknown as JsonValue,
    ...(kept.evidenceBlobs ? { evidenceBlobs: kept.evidenceBlobs as { [k: string]: JsonValue } } : {}),
    runtimeData: kept.evidence.runtimeData as JsonValue,
    bindingDigest: o.bindingDigest,
    // Checks are plain JSON as the engine builds them (CheckRun, policyCheck): no copy.
    checks: o.appraisal.checks as unknown as JsonValue,
    policy: o.appraisal.policy as unknown as JsonValue,
    pool,
    tcb: plainJson(o.tcb),
  };
}

