// A/B comparison of two verifier builds: both run as `joinguard serve` pinned to the same core (CPU 0) and get
// the same load at the same time (16 requests in flight each), so host speed drift, which swings single runs
// of verifier-http.ts by 20 %, hits both alike. Prints each one's CPU per appraisal (from /proc) and the ratio.
// Absolute figures are higher than a lone verifier's (two processes share the core's caches).
//
// Usage: npx tsx bench/verifier-ab.ts ROOT_A ROOT_B [appraisals]
//   ROOT_*: a built checkout (e.g. `git worktree add /tmp/base main~3 && cp -a node_modules /tmp/base/ &&
//   (cd /tmp/base && npm run build)`); the same root twice with AB_NODE_ARGS="|--max-semi-space-size=64"
//   compares node flags instead (A's and B's flags separated by |), and AB_ENV="NAME=v|NAME=v" environments.
//   AB_MODE=interleave runs the two in turns instead, each alone on the core with 32 in flight.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort } from '@joinguard/core/testing';
import { createSimCvm } from '@joinguard/simcvm';
import { httpCaller, processCpuSeconds, stopVerifier, threadCpuSeconds, threadName } from './support.js';
const roots = process.argv.slice(2, 4);
if (roots.length !== 2) {
  console.error('usage: npx tsx bench/verifier-ab.ts ROOT_A ROOT_B [appraisals]');
  process.exit(2);
}
const n = Number(process.argv[4] ?? 4000);
const nodeArgs = (process.env.AB_NODE_ARGS ?? '').split('|').map((s) => s.split(' ').filter(Boolean));
// AB_ENV="NAME=value ...|NAME=value ...": environment variables for A and for B.
const envs = (process.env.AB_ENV ?? '').split('|').map((s) => Object.fromEntries(s.split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
spawnSync('taskset', ['-cp', '1', String(process.pid)]);
const { call, close: closeHttp } = httpCaller(128);
const sim = await createSimCvm({ tee: 'snp', nodeName: 'bench-worker-0', vtpm: 'software' });
const servers: { port: number; child: ChildProcess; bodies: string[]; root: string; dir: string }[] = [];
for (const [i, root] of roots.entries()) {
  const dir = mkdtempSync(join(tmpdir(), 'jg-ab-'));
  const trust = sim.writeTrust(join(dir, 'trust'));
  writeFileSync(join(dir, 'policy.yaml'), YAML.stringify(sim.goodPolicy()));
  const port = await freePort();
  writeFileSync(join(dir, 'v.yaml'), YAML.stringify({ listen: { host: '127.0.0.1', port }, dataDir: join(dir, 'data'), policy: { file: join(dir, 'policy.yaml') }, trust: { snpTestRoots: [trust.snpRootsPem] }, rateLimit: { attestPerMinute: 10_000_000 }, logLevel: 'warn' }));
  const child = spawn('taskset', ['-c', '0', process.execPath, ...(nodeArgs[i] ?? []), join(root!, 'services/cli/bin/joinguard.js'), 'serve', '--config', join(dir, 'v.yaml')], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_OPTIONS: '', ...envs[i] } });
  for (let k = 0; ; k++) { try { if ((await call(port, 'GET', '/healthz')).status === 200) break; } catch { if (k > 100) throw new Error('no start'); await new Promise((r) => setTimeout(r, 100)); } }
  servers.push({ port, child, bodies: [], root: root!, dir });
}
// AB_WARMUP (default 3000): appraisals each build does under load before measuring, so that V8's optimising
// compiler has settled (see verifier-http.ts).
const warmup = Math.max(10, Number(process.env.AB_WARMUP ?? 3000));
for (const s of servers) for (let i = 0; i < n + warmup; i++) {
  const c = JSON.parse((await call(s.port, 'GET', '/v1/challenge')).text) as { nonce: string };
  s.bodies.push(JSON.stringify(await sim.evidence({ nonce: c.nonce, runtimeData: { nodeName: `bench-worker-${i % 50}`, machine: `m-${i % 50}`, purpose: 'reattest' } })));
}
let bad = 0;
const run = (s: (typeof servers)[number], count: number, inFlight: number) =>
  Promise.all(Array.from({ length: inFlight }, async () => { while (count > 0 && s.bodies.length) { count--; const r = await call(s.port, 'POST', '/v1/attest', s.bodies.pop()!); if (r.status !== 200) bad++; } }));
for (const s of servers) {
  for (const b of s.bodies.splice(0, 10)) { const r = await call(s.port, 'POST', '/v1/attest', b); if (r.status !== 200) throw new Error(r.text.slice(0, 200)); }
  await run(s, warmup - 10, 32);
}
if (bad > 0) throw new Error(`${bad} warm-up appraisals failed`);
// AB_THREADS=1: each build's CPU split into its main thread, its busiest other thread (the SQLite writer) and
// the rest (V8's GC and compiler helpers, libuv), in ms per appraisal.
const threads0 = servers.map((s) => threadCpuSeconds(s.child.pid));
const t0 = performance.now();
let ms: number[];
if (process.env.AB_MODE === 'interleave') {
  // Each build alone on the core, in turns (A B, B A, A B …), 32 in flight: no cross-process cache sharing, and
  // the order alternates so drift within a turn cancels.
  const rounds = 10;
  const cpu = [0, 0];
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const s = servers[i]!;
      const before = processCpuSeconds(s.child.pid) ?? NaN;
      await run(s, Math.ceil(n / rounds), 32);
      cpu[i]! += (processCpuSeconds(s.child.pid) ?? NaN) - before;
    }
  }
  ms = cpu.map((c) => (c * 1000) / n);
} else {
  const c0 = servers.map((s) => processCpuSeconds(s.child.pid) ?? NaN);
  await Promise.all(servers.map((s) => run(s, Infinity, 16)));
  const c1 = servers.map((s) => processCpuSeconds(s.child.pid) ?? NaN);
  ms = servers.map((_, i) => ((c1[i]! - c0[i]!) * 1000) / n);
}
const wall = (performance.now() - t0) / 1000;
if (process.env.AB_THREADS) {
  for (const [i, s] of servers.entries()) {
    const after = threadCpuSeconds(s.child.pid);
    const d = [...after].map(([t, v]) => [t, v - (threads0[i]!.get(t) ?? 0)] as const);
    const main = d.find(([t]) => t === String(s.child.pid))?.[1] ?? 0;
    const others = d.filter(([t]) => t !== String(s.child.pid)).map(([, v]) => v).sort((a, b) => b - a);
    const per = (seconds: number) => ((seconds * 1000) / n).toFixed(3);
    console.log(`${i === 0 ? 'A' : 'B'}: main ${per(main)} ms, busiest other thread ${per(others[0] ?? 0)} ms, rest ${per(others.slice(1).reduce((a, b) => a + b, 0))} ms per appraisal`);
    const named = d.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([t, v]) => `${threadName(s.child.pid, t)} ${per(v)}`);
    console.log(`   by thread: ${named.join(', ')}`);
  }
}
console.log(`wall ${wall.toFixed(1)} s, ${bad} non-200; CPU per appraisal: ${servers.map((s, i) => `${s.root}${nodeArgs[i]?.length ? ' ' + nodeArgs[i]!.join(' ') : ''}${Object.keys(envs[i] ?? {}).length ? ' ' + JSON.stringify(envs[i]) : ''} ${ms[i]!.toFixed(3)} ms`).join(' | ')}; ratio ${(ms[1]! / ms[0]!).toFixed(3)}`);
const stopped = servers.map((s) => stopVerifier(s.child, s.dir));
await sim.close(); closeHttp();
await Promise.all(stopped);
