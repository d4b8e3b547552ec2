import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEventLog, replayPcrs } from '@joinguard/eventlog';
import { bindingDigest, fromB64url, tpmExtraData, type Evidence } from '@joinguard/protocol';
import { decodeAttest, decodePublic, decodeSignature, publicKeyObject, verifyQuote } from '@joinguard/tpm';
import { decodeReport } from '@joinguard/snp';
import { decodeQuote } from '@joinguard/tdx';
import { createSimCvm, headerOnlyEventLog, type SimCvm } from '../src/index.js';

// The simulator's output checked by independent tools: tpm2-tools (tpm2_eventlog, tpm2_print, tpm2_checkquote)
// and the decoders of the evidence packages.

function tool(args: string[]): { code: number; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** `pcrs:` section of tpm2_eventlog's YAML: bank → PCR → hex. */
function tpm2EventlogPcrs(yaml: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  const section = yaml.slice(yaml.lastIndexOf('\npcrs:'));
  let bank = '';
  for (const line of section.split('\n')) {
    const b = /^ {2}(sha1|sha256|sha384):\s*$/.exec(line);
    if (b) bank = b[1]!;
    const v = /^ {4}(\d+)\s*:\s*0x([0-9a-fA-F]+)/.exec(line);
    if (v && bank) (out[bank] ??= {})[v[1]!] = v[2]!.toLowerCase();
  }
  return out;
}

describe('simulated CVM with the software vTPM', () => {
  let sim: SimCvm;
  let ev: Evidence;
  let dir: string;
  const nonce = new Uint8Array(32).fill(0x5a);
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'tdx', vtpm: 'software', nodeName: 'sim-test' });
    ev = await sim.evidence({ nonce });
    dir = mkdtempSync(join(tmpdir(), 'jg-simcvm-'));
  });
  afterAll(async () => {
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('tpm2_eventlog replays the synthetic log to the PCR values the vTPM quoted', () => {
    const f = join(dir, 'log.bin');
    writeFileSync(f, sim.eventLog);
    const r = tool(['tpm2_eventlog', f]);
    expect(r.code).toBe(0);
    const pcrs = tpm2EventlogPcrs(r.out);
    expect(Object.keys(pcrs.sha256 ?? {}).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    for (const [pcr, v] of Object.entries(pcrs.sha256!)) expect(ev.tpm.pcrs.sha256![pcr], `PCR ${pcr}`).toBe(v);
    expect(Object.keys(pcrs.sha1 ?? {})).toHaveLength(9);
    // and the package replay agrees in both banks
    const replay = replayPcrs(parseEventLog(sim.eventLog));
    for (const [pcr, v] of Object.entries(pcrs.sha1!)) expect(replay.sha1![Number(pcr)]).toBe(v);
  });

  it('every data-carrying event of the log matches its digest (as firmware and grub write them)', () => {
    const log = parseEventLog(sim.eventLog);
    expect(log.format).toBe('crypto-agile');
    expect(log.banks).toEqual(['sha1', 'sha256']);
    expect(log.events.filter((e) => e.digestVerified === false)).toEqual([]);
    const vars = log.events.filter((e) => e.decoded.kind === 'efiVariable').map((e) => (e.decoded as { unicodeName: string }).unicodeName);
    expect(vars).toEqual(['SecureBoot', 'PK', 'KEK', 'db', 'dbx']);
    expect(log.events.filter((e) => e.typeName === 'EV_SEPARATOR').map((e) => e.pcrIndex)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const apps = log.events.filter((e) => e.typeName === 'EV_EFI_BOOT_SERVICES_APPLICATION');
    expect(apps.map((e) => e.digests.find((d) => d.bank === 'sha256')!.digest).map((d) => Buffer.from(d).toString('hex'))).toEqual(sim.boot.bootApps.map((a) => a.digestSha256));
  });

  it('tpm2_print reads the AK as an ECC P-256 restricted signing key (byte-exact TPMT_PUBLIC)', () => {
    const f = join(dir, 'ak.pub');
    writeFileSync(f, Buffer.from(ev.tpm.akPublic, 'base64'));
    const r = tool(['tpm2_print', '-t', 'TPMT_PUBLIC', f]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|restricted\|sign/);
    expect(r.out).toMatch(/curve-id:\s*\n\s*value: NIST p256/);
    expect(r.out).toMatch(/scheme:\s*\n\s*value: ecdsa/);
  });

  it('tpm2_checkquote verifies the quote signature and extraData = SHA-256(d)', () => {
    const d = bindingDigest(fromB64url(ev.nonce, 'X', 'nonce'), ev.runtimeData);
    const extra = Buffer.from(tpmExtraData(d)).toString('hex');
    const pem = publicKeyObject(decodePublic(Buffer.from(ev.tpm.akPublic, 'base64'))).export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'ak.pem'), pem);
    writeFileSync(join(dir, 'quote.bin'), Buffer.from(ev.tpm.quote, 'base64'));
    writeFileSync(join(dir, 'sig.bin'), Buffer.from(ev.tpm.signature, 'base64'));
    const ok = tool(['tpm2_checkquote', '-u', join(dir, 'ak.pem'), '-m', join(dir, 'quote.bin'), '-s', join(dir, 'sig.bin'), '-q', extra, '-g', 'sha256']);
    expect(ok.out).not.toMatch(/ERROR/);
    const bad = tool(['tpm2_checkquote', '-u', join(dir, 'ak.pem'), '-m', join(dir, 'quote.bin'), '-s', join(dir, 'sig.bin'), '-q', '00'.repeat(32), '-g', 'sha256']);
    expect(bad.out).toMatch(/ERROR/);
    const q = decodeAttest(Buffer.from(ev.tpm.quote, 'base64'));
    expect(q.pcrSelect).toEqual([{ hash: 0x000b, bank: 'sha256', pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    expect(decodeSignature(Buffer.from(ev.tpm.signature, 'base64')).sigAlg).toBe('ecdsa');
  });

  it('binds d into the TD quote REPORT_DATA', () => {
    const d = bindingDigest(nonce, ev.runtimeData);
    expect(Buffer.from(decodeQuote(Buffer.from(ev.hardware.report, 'base64')).body.reportData).toString('hex')).toBe(Buffer.from(d).toString('hex'));
    expect(ev.runtimeData.akPublicSha256).toBe(createHash('sha256').update(Buffer.from(ev.tpm.akPublic, 'base64')).digest('hex'));
  });

  it('a header-only log extends nothing', () => {
    const log = parseEventLog(headerOnlyEventLog());
    expect(log.events).toHaveLength(1);
    expect(replayPcrs(log)).toEqual({ sha1: {}, sha256: {} });
  });
});

describe('simulated SNP CVM with swtpm', () => {
  let sim: SimCvm;
  beforeAll(async () => {
    sim = await createSimCvm({ tee: 'snp', vtpm: 'swtpm' });
  });
  afterAll(() => sim?.close());

  it('swtpm quotes exactly the PCRs the event log replays to, with an AK of the same form as the software one', async () => {
    const ev = await sim.evidence();
    const claims = verifyQuote({ quote: Buffer.from(ev.tpm.quote, 'base64'), signature: Buffer.from(ev.tpm.signature, 'base64'), akPublic: Buffer.from(ev.tpm.akPublic, 'base64'), pcrs: ev.tpm.pcrs });
    expect(claims.pcrsVerified).toBe(true);
    const replay = replayPcrs(parseEventLog(sim.eventLog));
    for (const [pcr, v] of Object.entries(replay.sha256!)) expect(ev.tpm.pcrs.sha256![pcr], `PCR ${pcr}`).toBe(v);
    const ak = decodePublic(Buffer.from(ev.tpm.akPublic, 'base64'));
    expect(ak.type).toBe('ecc');
    expect(ak.objectAttributes.restricted && ak.objectAttributes.sign && !ak.objectAttributes.decrypt).toBe(true);
    const report = decodeReport(Buffer.from(ev.hardware.report, 'base64'));
    expect(Buffer.from(report.reportData).toString('hex')).toBe(Buffer.from(bindingDigest(fromB64url(ev.nonce, 'X', 'nonce'), ev.runtimeData)).toString('hex'));
  });
});
