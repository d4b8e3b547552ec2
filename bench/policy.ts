// Policy engine figures on one core: loading a policy, evaluating an appraisal, the policy digest,
// dry-running a draft over stored claims, and learning from many nodes.
// Usage: npx tsx bench/policy.ts [seconds-per-measurement]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@joinguard/core/testing';
import { dryRun, evaluate, learn, loadPolicy, parseClaims, policyDigest, type AppraisalClaims } from '@joinguard/policy';

const seconds = Number(process.argv[2] ?? 1.5);
const now = new Date('2026-11-23T00:00:00Z');
const text = readFileSync(join(repoRoot, 'packages/policy/examples/worker-pool.yaml'), 'utf8');
const policy = loadPolicy(text, now).policy;

const hex = (b: number, n: number) => b.toString(16).padStart(2, '0').repeat(n);
// A node with the example's reference values, 24 SHA-256 PCRs, a boot log with 3 applications.
const refs = policy.referenceValues!;
const claims: AppraisalClaims = {
  tee: 'azure-snp-vtpm',
  snp: {
    policy: { smt: true, migrateMa: false, debug: false, singleSocket: false },
    vmpl: 0,
    reportedTcb: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
    measurement: refs[0]!.snp!.measurement![0]!,
    hostData: hex(0, 32),
    idKeyDigest: hex(0, 48),
    authorKeyDigest: hex(0, 48),
  },
  tpm: { banks: ['sha256'], pcrs: { sha256: Object.fromEntries(Array.from({ length: 24 }, (_, i) => [String(i), i === 4 ? refs[3]!.pcrs!.sha256!['4']![0]! : hex(i, 32)])) } },
  boot: {
    secureBoot: true,
    pk: { certSha256: refs[1]!.boot!.pk!.certSha256!, hashes: [] },
    kek: { certSha256: refs[1]!.boot!.kek!.certSha256!, hashes: [] },
    db: { certSha256: refs[1]!.boot!.db!.certSha256!, hashes: [] },
    dbx: { certSha256: [], hashes: [...refs[1]!.boot!.dbx!.hashes!, ...Array.from({ length: 400 }, (_, i) => hex(i % 256, 32).slice(0, 60) + i.toString(16).padStart(4, '0'))] },
    bootApps: refs[3]!.boot!.bootApps!.map((d, i) => ({ digestSha256: d, eventIndex: 20 + i, pcr: 4 })),
    kernelCmdline: [{ value: 'BOOT_IMAGE=(hd0,gpt3)/ostree/rhcos-abc/vmlinuz ostree=/ostree/boot.1/rhcos/abc/0 ignition.platform.id=azure ro', eventIndex: 41, pcr: 8 }],
    grubCommands: Array.from({ length: 30 }, (_, i) => ({ value: `set var${i}=value${i}`, eventIndex: 50 + i, pcr: 8 })),
    unverifiedEvents: [],
  },
};

function rate(fn: () => void): { perSecond: number; micros: number } {
  for (let i = 0; i < 50; i++) fn();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    fn();
    n++;
  }
  const ms = performance.now() - t0;
  return { perSecond: (n / ms) * 1000, micros: (ms / n) * 1000 };
}

const show = (name: string, r: { perSecond: number; micros: number }) => console.log(`${name.padEnd(44)} ${r.perSecond.toFixed(0).padStart(8)}/s  ${r.micros.toFixed(1).padStart(9)} µs each`);

const a = evaluate(policy, claims, now);
console.log(`example policy: ${a.results.length} rule outcomes, verdict ${a.verdict}${a.failures.length ? ` (${a.failures.map((f) => f.rule).join(', ')})` : ''}`);
show('loadPolicy (YAML, schema, semantic checks)', rate(() => loadPolicy(text, now)));
show('policyDigest (JCS + SHA-256)', rate(() => policyDigest(policy)));
show('parseClaims (claims schema)', rate(() => parseClaims(claims)));
show('evaluate (every rule, digest included)', rate(() => evaluate(policy, claims, now)));
const stored = Array.from({ length: 1000 }, (_, i) => ({ id: `node-${i}`, claims, verdict: 'pass' as const }));
show('dryRun over 1000 stored appraisals', rate(() => dryRun(policy, stored, now)));
const nodes = Array.from({ length: 100 }, (_, i) => ({ name: `node-${i}`, claims }));
show('learn from 100 nodes', rate(() => learn(nodes)));
