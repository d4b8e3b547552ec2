import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { vectorPath } from '@joinguard/core/testing';

export const TPM_LOGS = ['arch-linux-workstation', 'debian-10', 'glinux-alex', 'rhel8-uefi', 'ubuntu-2104-no-secure-boot'] as const;
export const CCEL_LOGS = ['CCEL_data', 'CCEL_data_grub', 'CCEL_data_ovmf'] as const;

/** Runs tpm2_eventlog (tpm2-tools) on a file and returns its `pcrs:` section as bank → pcr → hex. */
export function tpm2Eventlog(path: string): Record<string, Record<number, string>> {
  const out = execFileSync('tpm2_eventlog', [path], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  const i = out.lastIndexOf('\npcrs:\n');
  if (i < 0) throw new Error(`tpm2_eventlog printed no pcrs section for ${path}`);
  const banks: Record<string, Record<number, string>> = {};
  let bank = '';
  for (const line of out.slice(i + 7).split('\n')) {
    const b = /^ {2}(\w+):\s*$/.exec(line);
    if (b) {
      bank = b[1]!;
      banks[bank] = {};
      continue;
    }
    const p = /^ {4}(\d+)\s*:\s*0x([0-9a-fA-F]+)\s*$/.exec(line);
    if (p && bank) banks[bank]![Number(p[1])] = p[2]!.toLowerCase();
  }
  return banks;
}

/** Event counts per vector file from MANIFEST.md "Event counts" (an independent parser's figures). */
export function manifestEventCounts(manifest: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of manifest.split('\n')) {
    const r = /^- (eventlog\/\S+\.bin): (\d+) events incl\. the header event/.exec(line);
    if (r) m.set(r[1]!, Number(r[2]));
  }
  return m;
}

export function tpmLogPath(name: string): string {
  return vectorPath(`eventlog/tpm_go_eventlog/${name}.bin`);
}

export interface SynthEvent {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** Digests per TPM_ALG_ID; default: the hash of `data` for each declared algorithm. */
  digests?: { alg: number; digest: Uint8Array }[];
}

const NODE: Record<number, [string, number]> = { 0x0004: ['sha1', 20], 0x000b: ['sha256', 32], 0x000c: ['sha384', 48] };

/** Builds a crypto-agile log (Spec ID Event03 header + TCG_PCR_EVENT2 records) for tests of the parser. */
export function buildAgileLog(algs: number[], events: SynthEvent[], opts: { digestSizes?: Record<number, number> } = {}): Uint8Array {
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return b;
  };
  const u16 = (v: number): Buffer => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    return b;
  };
  const spec = Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0),
    Buffer.from([0, 2, 0, 2]),
    u32(algs.length),
    ...algs.map((a) => Buffer.concat([u16(a), u16(opts.digestSizes?.[a] ?? NODE[a]![1])])),
    Buffer.from([0]),
  ]);
  const parts: Buffer[] = [u32(0), u32(3), Buffer.alloc(20), u32(spec.length), spec];
  for (const ev of events) {
    const digests = ev.digests ?? algs.map((alg) => ({ alg, digest: createHash(NODE[alg]![0]).update(ev.data).digest() }));
    parts.push(u32(ev.pcr), u32(ev.type), u32(digests.length));
    for (const d of digests) parts.push(u16(d.alg), Buffer.from(d.digest));
    parts.push(u32(ev.data.length), Buffer.from(ev.data));
  }
  return new Uint8Array(Buffer.concat(parts));
}
