// Long fuzz run of the TPM response parsers of @joinguard/tpm2 (what the attester reads back from tss2):
// random bytes and mutations of well-formed structures must only ever produce TPM2_MALFORMED_RESPONSE.
// Run: npx tsx packages/tpm2/scripts/fuzz-tpm2.ts [runs, default 1000000] [seed]
import { performance } from 'node:perf_hooks';
import { JoinguardError } from '@joinguard/core';
import {
  Writer,
  marshalNvPublic,
  marshalPcrSelection,
  parseDigestList,
  parseNvPublic,
  parsePcrSelection,
  parseQuoteInfo,
  parseTpmProperties,
  unwrapTpm2b,
} from '../src/marshal.js';

const runs = Number(process.argv[2] ?? 1_000_000);
let state = BigInt(process.argv[3] ?? 0x9e3779b97f4a7c15n) || 1n;
/** xorshift64*: reproducible from the seed. */
function rnd(n: number): number {
  state ^= state >> 12n;
  state ^= (state << 25n) & 0xffffffffffffffffn;
  state ^= state >> 27n;
  return Number(((state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) % n;
}

const sel = marshalPcrSelection({ sha1: [0, 7], sha256: [0, 1, 2, 3, 4, 5, 6, 7, 14] });
const attest = new Writer()
  .u32(0xff544347)
  .u16(0x8018)
  .tpm2b(new Uint8Array(34).fill(1))
  .tpm2b(new Uint8Array(32).fill(2))
  .bytes(new Uint8Array(17))
  .bytes(new Uint8Array(8))
  .bytes(sel)
  .tpm2b(new Uint8Array(32).fill(3))
  .done();
const digests = new Writer().u32(2).tpm2b(new Uint8Array(32)).tpm2b(new Uint8Array(20)).done();
const nvPublic = marshalNvPublic({ nvIndex: 0x01400001, nameAlg: 0x000b, attributes: 0x62072801, authPolicy: new Uint8Array(0), dataSize: 2600 });
const props = new Writer().u32(6).u32(2).u32(0x12c).u32(1024).u32(0x117).u32(2048).done();
const seeds = [attest, sel, digests, nvPublic, nvPublic.subarray(2), props];

function input(): Uint8Array {
  if (rnd(4) === 0) return Uint8Array.from({ length: rnd(300) }, () => rnd(256));
  const seed = seeds[rnd(seeds.length)]!;
  let b: Uint8Array = seed.slice();
  const mutations = 1 + rnd(4);
  for (let m = 0; m < mutations; m++) {
    switch (rnd(4)) {
      case 0: // flip a byte (counts and sizes are where parsers break)
        if (b.length > 0) b[rnd(b.length)] = rnd(256);
        break;
      case 1: // truncate
        b = b.subarray(0, rnd(b.length + 1));
        break;
      case 2: // append garbage
        b = Uint8Array.from([...b, ...Array.from({ length: rnd(40) }, () => rnd(256))]);
        break;
      default: // set a 16/32-bit field to an extreme
        if (b.length > 4) {
          const o = rnd(b.length - 3);
          b[o] = 0xff;
          b[o + 1] = rnd(2) ? 0xff : 0x00;
        }
    }
  }
  return b;
}

const parsers = [parseQuoteInfo, parsePcrSelection, parseDigestList, parseNvPublic, parseTpmProperties, (x: Uint8Array) => unwrapTpm2b(x, 'TPM2B')];
let failures = 0;
let accepted = 0;
let slowest = 0;
const t0 = performance.now();
for (let i = 0; i < runs; i++) {
  const b = input();
  const s = performance.now();
  for (const p of parsers) {
    try {
      p(b);
      accepted++;
    } catch (e) {
      if (!(e instanceof JoinguardError) || e.code !== 'TPM2_MALFORMED_RESPONSE') {
        failures++;
        if (failures <= 5) console.error('failure on', Buffer.from(b).toString('hex'), e);
      }
    }
  }
  slowest = Math.max(slowest, performance.now() - s);
}
const secs = (performance.now() - t0) / 1000;
console.log(`inputs: ${runs}  parser calls: ${runs * parsers.length}  accepted: ${accepted}  failures: ${failures}  time: ${secs.toFixed(1)} s  slowest input: ${slowest.toFixed(2)} ms`);
process.exitCode = failures === 0 ? 0 : 1;
