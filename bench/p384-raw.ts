// Raw ECDSA P-384 verifications per second of each backend of @joinguard/snp (node:crypto, and Nettle where
// libhogweed loads, with and without per-key tables), in interleaved batches; prints
// {"openssl": n, "nettle": n, "nettle+tables": n}. Used by verifier-http.ts.
// Usage: npx tsx bench/p384-raw.ts [milliseconds per backend, 1000]
import { sign } from 'node:crypto';
import { newKeyPair } from '@joinguard/core';
import { p384Backends } from '@joinguard/snp';

const ms = Number(process.argv[2] ?? 1000);
const { privateKey, publicKey } = newKeyPair({ type: 'ec', namedCurve: 'secp384r1' });
const data = Buffer.alloc(672, 7);
const sig = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
const backends = p384Backends();
const spent = backends.map(() => 0);
const counts = backends.map(() => 0);
for (const b of backends) for (let i = 0; i < 100; i++) if (!b.verify(publicKey, data, sig)) throw new Error(`${b.label} refused a good signature`);
while (spent.some((s) => s < ms)) {
  backends.forEach((b, k) => {
    const t = performance.now();
    for (let i = 0; i < 20; i++) b.verify(publicKey, data, sig);
    spent[k]! += performance.now() - t;
    counts[k]! += 20;
  });
}
console.log(JSON.stringify(Object.fromEntries(backends.map((b, k) => [b.label, (counts[k]! * 1000) / spent[k]!]))));
