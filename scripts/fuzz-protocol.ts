// Long fuzz run of @joinguard/protocol's hostile-input surfaces:
//   npx tsx scripts/fuzz-protocol.ts [runs]     (default 1,000,000 inputs in total)
// - canonicalJson on arbitrary JS values: returns what the canonicalize library (an independent RFC 8785
//   implementation) writes and a string that parses back to itself, or throws a JoinguardError
// - checkChallenge on arbitrary strings and on bit-flipped genuine nonces: always a typed refusal, never ok
// - verifyResult on mutated genuine result JWTs: a typed refusal unless the JWT is byte-identical in meaning
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { JoinguardError } from '@joinguard/core';
import { canonicalJson, checkChallenge, generateSigningKey, issueChallenge, signResult, verifyResult } from '@joinguard/protocol';
import type { AttestationResultClaims } from '@joinguard/protocol';

const total = Number(process.argv[2] ?? 1_000_000);
const share = { jcs: Math.floor(total * 0.45), nonce: Math.floor(total * 0.45) };
const jwtRuns = total - share.jcs - share.nonce;
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

const secs = (performance.now() - t0) / 1000;
console.log(`fuzz-protocol: ${inputs} inputs (canonicalJson ${share.jcs}, checkChallenge ${share.nonce}, verifyResult ${jwtRuns}), ${failures} failures, ${secs.toFixed(1)} s`);
process.exitCode = failures === 0 ? 0 : 1;
