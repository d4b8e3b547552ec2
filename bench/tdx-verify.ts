// TDX quote verifications per second on one core, with the chain and collateral checks cached (as a verifier
// runs: the collateral of a platform is verified once per nextUpdate, its PCK chain once), next to raw
// ECDSA P-256 verifications in the same run. A first quote from a platform costs two P-256 verifies (the
// attestation key's over the quote, the PCK's over the QE report); the QE report is the same in every quote
// of that platform, so PckChainCache remembers the exact QE report bytes it verified and later quotes cost
// one P-256 verify plus decoding, the QE binding hash and the TCB/QE identity evaluation.
//   npx tsx bench/tdx-verify.ts [seconds]
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { PckChainCache, verifyCollateral, verifyQuoteWithCollateral } from '@joinguard/tdx';
import { buildQuote, createTestPki, testCollateral, type TestPlatform } from '@joinguard/tdx/testing';

const seconds = Number(process.argv[2] ?? 3);

interface Meter {
  n: number;
  ms: number;
}

/** Runs f in 50-call batches for `ms` milliseconds, adding to the meter. */
function slice(m: Meter, ms: number, f: () => void): void {
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) f();
    m.n += 50;
  }
  m.ms += performance.now() - start;
}

const NOW = new Date('2025-01-15T00:00:00Z');
const platform: TestPlatform = { fmspc: '00906ed50000', sgxTcbComponents: [5, 5, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0], pceSvn: 11, teeTcbSvn: Uint8Array.from([3, 0, 5]) };
const pki = await createTestPki();
const pck = await pki.issuePck(platform);
const quote = buildQuote({ version: 4, pck, body: { teeTcbSvn: platform.teeTcbSvn } });
const collateral = await verifyCollateral(await testCollateral(pki, platform, new Date('2025-01-01T00:00:00Z'), new Date('2025-02-01T00:00:00Z')), { now: NOW, trustAnchor: pki.anchor });
const cache = new PckChainCache();
/** Keeps the PCK chain but never a QE report: every quote costs both P-256 verifies, as a platform's first one does. */
class ChainOnlyCache extends PckChainCache {
  override qeReportVerified(): boolean {
    return false;
  }
}
const chainOnly = new ChainOnlyCache();

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const privateKey = pair.privateKey;
// A verifier never holds a generated key object, only keys imported from bytes (the attestation key, the PCK
// certificate's key); OpenSSL verifies with an imported key measurably slower than with the object
// generateKeyPairSync returns, so the baseline uses an imported key too.
const publicKey = createPublicKey({ key: pair.publicKey.export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' });
const msg = quote.subarray(0, 632);
const sig = sign('sha256', msg, { key: privateKey, dsaEncoding: 'ieee-p1363' });

const rawVerify = () => {
  if (!verify('sha256', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('raw verify failed');
};
const quoteVerify = () => {
  if (!verifyQuoteWithCollateral(quote, collateral, { now: NOW, cache }).verified) throw new Error('quote verify failed');
};
const quoteVerifyBoth = () => {
  if (!verifyQuoteWithCollateral(quote, collateral, { now: NOW, cache: chainOnly }).verified) throw new Error('quote verify failed');
};
for (let i = 0; i < 300; i++) {
  rawVerify();
  quoteVerify();
  quoteVerifyBoth();
}
// The three are measured in alternating 100 ms slices so that a change in machine load affects both alike.
const raw: Meter = { n: 0, ms: 0 };
const tdx: Meter = { n: 0, ms: 0 };
const both: Meter = { n: 0, ms: 0 };
const slices = Math.max(1, Math.round((seconds * 1000) / 300));
for (let k = 0; k < slices; k++) {
  slice(raw, 100, rawVerify);
  slice(tdx, 100, quoteVerify);
  slice(both, 100, quoteVerifyBoth);
}
const rawPerSec = raw.n / (raw.ms / 1000);
const tdxPerSec = tdx.n / (tdx.ms / 1000);
console.log(`node ${process.version}, one thread, ${seconds} s in alternating 100 ms slices`);
console.log(`raw ECDSA P-256 verify (node:crypto)          ${rawPerSec.toFixed(0).padStart(8)} /s  (${raw.n})`);
console.log(`TDX quote verify (collateral + chain cached)  ${tdxPerSec.toFixed(0).padStart(8)} /s  (${tdx.n})`);
const bothPerSec = both.n / (both.ms / 1000);
console.log(`TDX quote verify, QE report verified each time ${bothPerSec.toFixed(0).padStart(8)} /s  (${both.n})`);
console.log(`ratio quote/raw = ${(tdxPerSec / rawPerSec).toFixed(3)} (goal >= 0.45); with the QE report verified each time: ${(bothPerSec / rawPerSec).toFixed(3)}`);
