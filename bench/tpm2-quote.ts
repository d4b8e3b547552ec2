// TPM2_Quote throughput on swtpm through @joinguard/tpm2 (koffi → tss2-esys → swtpm TCTI over loopback).
// Run: npx tsx bench/tpm2-quote.ts [seconds per figure, default 2]
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openTpm } from '@joinguard/tpm2';
import { startSwtpm } from '@joinguard/tpm2/testing';

const seconds = Number(process.argv[2] ?? 2);

function rate(label: string, f: () => void): void {
  f(); // warm up
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    f();
    n++;
  }
  const ms = performance.now() - t0;
  console.log(`${label.padEnd(48)} ${(n / (ms / 1000)).toFixed(1).padStart(8)} /s   ${(ms / n).toFixed(2).padStart(7)} ms each   (${n} runs)`);
}

const t0 = performance.now();
const sw = await startSwtpm();
console.log(`swtpm manufactured and started in ${(performance.now() - t0).toFixed(0)} ms (${sw.tcti})`);
const tpm = openTpm(sw.tcti);
try {
  const sel = { sha256: [0, 1, 2, 3, 4, 5, 6, 7, 14] };
  const nonce = new Uint8Array(randomBytes(32));
  rate('pcrRead sha256 x9', () => tpm.pcrRead(sel));
  rate('createAk ecc + flush', () => tpm.flush(tpm.createAk({ alg: 'ecc' })));
  rate('createAk rsa-2048 + flush', () => tpm.flush(tpm.createAk({ alg: 'rsa' })));
  for (const alg of ['ecc', 'rsa'] as const) {
    const ak = tpm.createAk({ alg });
    rate(`quote ${alg} (9 PCRs, pcrValues: false)`, () => tpm.quote(ak, { extraData: nonce, pcrs: sel, pcrValues: false }));
    rate(`quote ${alg} (9 PCRs, read + digest check)`, () => tpm.quote(ak, { extraData: nonce, pcrs: sel }));
    tpm.flush(ak);
  }
  const index = 0x01500000;
  tpm.nvDefine(index, 2048);
  tpm.nvWrite(index, new Uint8Array(randomBytes(2048)));
  rate('nvRead 2048 bytes (2 chunks)', () => tpm.nvRead(index));
  tpm.nvUndefine(index);
} finally {
  tpm.close();
  await sw.stop();
}
