// Long fuzz run of @joinguard/protocol's hostile-input surfaces:
//   npx tsx scripts/fuzz-protocol.ts [runs]     (default 1,000,000 inputs in total)
// - canonicalJson on arbitrary JS values: returns what the canonicalize library (an independent RFC 8785
//   implementation) writes and a string that parses back to itself, or throws a JoinguardError
// - checkChallenge on arbitrary strings and on bit-flipped genuine nonces: always a typed refusal, never ok
// - verifyResult on mutated genuine result JWTs: a typed refusal unless the JWT is byte-identical in meaning
// - recordedEvidence / evidenceOfRecord on arbitrary event-log text, certificate entries and record bodies: never
//   a throw; a log or certificate kept by digest comes back exactly as it came, the evidence given in is not
//   changed, and a blob that is not what its name says is never used
import { isDeepStrictEqual } from 'node:util';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { JoinguardError } from '@joinguard/core';
import { CERT_BLOB_NAMES, canonicalJson, checkChallenge, evidenceOfRecord, generateSigningKey, issueChallenge, recordedEvidence, signResult, verifyResult } from '@joinguard/protocol';
import type { Evidence } from '@joinguard/protocol';
import type { AttestationResultClaims } from '@joinguard/protocol';

const total = Number(process.argv[2] ?? 1_000_000);
const share = { jcs: Math.floor(total * 0.45), nonce: Math.floor(total * 0.45), blobs: Math.floor(total * 0.05) };
const jwtRuns = total - share.jcs - share.nonce - share.blobs;
let inputs = 0;
let failures = 0;
const t0 = performance.now();

function fail(what: string, detail: unknown): void {
  failures++;
  if (failures <= 10) console.error(`FAIL ${what}:`, detail);
}

// 1. canonicalJson
fc.assert(
  fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true }), (v) => {
    inputs++;
    try {
      const c = canonicalJson(v);
      if (canonicalJson(JSON.parse(c)) !== c) fail('jcs not idempotent', c);
      if (canonicalize(v) !== c) fail('jcs differs from the canonicalize library', { ours: c, theirs: canonicalize(v) });
    } catch (e) {
      if (!(e instanceof JoinguardError)) fail('jcs foreign error', e);
    }
  }),
  { numRuns: share.jcs },
);

// 2. challenges
const key = new Uint8Array(32).fill(9);
const now = new Date('2026-11-23T10:00:00Z');
const genuine = Buffer.from(issueChallenge(key, now).nonceBytes);
fc.assert(
  fc.property(
    fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ minLength: 0, maxLength: 100 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.tuple(fc.nat(genuine.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const b = Buffer.from(genuine);
        b[i]! ^= x;
        return b.toString('base64url');
      }),
    ),
    (s) => {
      inputs++;
      try {
        checkChallenge(key, s, now);
        fail('forged nonce accepted', s);
      } catch (e) {
        if (!(e instanceof JoinguardError) || !['PROTOCOL_NONCE_MALFORMED', 'PROTOCOL_NONCE_FORGED'].includes(e.code)) fail('nonce: unexpected error', e);
      }
    },
  ),
  { numRuns: share.nonce },
);

// 3. result JWTs
const k = await generateSigningKey();
const iat = now.getTime() / 1000;
const claims: AttestationResultClaims = {
  sub: 'worker-0',
  jti: 'r1',
  iat,
  exp: iat + 600,
  verdict: 'fail',
  tee: 'tdx',
  tcb: { status: 'UpToDate' },
  measurements: { mrTd: 'ab'.repeat(48) },
  bindings: { teeKeyThumbprint: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' },
  policy: { id: 'p', digest: 'cd'.repeat(32) },
};
const jwt = await signResult(claims, k.privateKey, k.kid);
const jwks = { keys: [k.publicJwk] };
const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
const mutants = fc.sample(
  fc.array(fc.tuple(fc.nat(jwt.length - 1), fc.nat(alphabet.length - 1), fc.nat(2)), { minLength: 1, maxLength: 4 }),
  jwtRuns,
);
for (const edits of mutants) {
  inputs++;
  let m = jwt;
  for (const [pos, ch, op] of edits) {
    const c = alphabet[ch]!;
    m = op === 0 ? m.slice(0, pos) + c + m.slice(pos + 1) : op === 1 ? m.slice(0, pos) + c + m.slice(pos) : m.slice(0, pos) + m.slice(pos + 1);
  }
  try {
    const got = await verifyResult(m, jwks, { now });
    // base64url has spare bits in a segment's last character: such an edit leaves the bytes, and so the meaning, unchanged.
    if (JSON.stringify(got) !== JSON.stringify(claims)) fail('mutated JWT accepted with other claims', m);
  } catch (e) {
    if (!(e instanceof JoinguardError) || !e.code.startsWith('PROTOCOL_RESULT_')) fail('jwt: unexpected error', e);
  }
}

// 4. event logs and certificates kept by digest
const b64ish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')),
  fc.string({ unit: fc.constantFrom(...'ABCDQRSTabc+/=0 \n-_@'.split('')), maxLength: 40 }),
  fc.string({ maxLength: 20 }),
);
// Certificate entries: the names kept as blobs, per-appraisal ones and any other, with any text, in a plain
// object as JSON.parse makes (fast-check's dictionaries have no prototype).
const certsOf = fc.option(fc.dictionary(fc.oneof(fc.constantFrom(...CERT_BLOB_NAMES, 'tdQuote'), fc.string({ minLength: 1, maxLength: 8 })), fc.oneof(b64ish, fc.string({ maxLength: 30 }))).map((d) => ({ ...d })), { nil: undefined });
await fc.assert(
  fc.asyncProperty(b64ish, certsOf, fc.anything(), fc.boolean(), async (eventLog, certs, junk, tamper) => {
    inputs++;
    const ev = { nonce: 'n', tee: 'snp', runtimeData: { nodeName: 'w-0', purpose: 'join' }, hardware: { report: 'AA==', ...(certs ? { certs } : {}) }, tpm: {}, eventLog } as unknown as Evidence;
    const given = structuredClone(ev);
    try {
      const kept = recordedEvidence(ev);
      if (!isDeepStrictEqual(ev, given)) fail('recordedEvidence changed the evidence it was given', { eventLog, certs });
      const blobs = new Map(kept.blobs.map((b) => [b.sha256, tamper ? new Uint8Array([...b.data, 1]) : b.data]));
      const back = await evidenceOfRecord({ evidence: kept.evidence, ...(kept.evidenceBlobs ? { evidenceBlobs: kept.evidenceBlobs } : {}) }, async (n) => blobs.get(n));
      if ('evidence' in back) {
        if (!isDeepStrictEqual(back.evidence, ev)) fail('evidence did not come back as it came', { eventLog, certs });
        if (tamper && kept.blobs.length > 0) fail('an altered blob was used', { eventLog });
      } else if (!(tamper && back.gap.code === 'RECORD_BLOB_ALTERED')) fail('unexpected gap', { eventLog, gap: back.gap });
      // Hostile bodies (a store file or a server one does not trust): a gap or evidence, never a throw.
      await evidenceOfRecord({ evidence: kept.evidence, evidenceBlobs: junk }, async () => new Uint8Array(0));
      await evidenceOfRecord({ evidence: junk, evidenceBlobs: kept.evidenceBlobs }, async () => undefined);
    } catch (e) {
      fail('record evidence threw', { eventLog, e });
    }
  }),
  { numRuns: share.blobs },
);

const secs = (performance.now() - t0) / 1000;
console.log(`fuzz-protocol: ${inputs} inputs (canonicalJson ${share.jcs}, checkChallenge ${share.nonce}, verifyResult ${jwtRuns}, record evidence ${share.blobs}), ${failures} failures, ${secs.toFixed(1)} s`);
process.exitCode = failures === 0 ? 0 : 1;
