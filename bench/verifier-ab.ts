// A/B comparison of two verifier builds: both run as `joinguard serve` pinned to the same core (CPU 0) and get
// the same load at the same time (16 requests in flight each), so host speed drift, which swings single runs
// of verifier-http.ts by 20 %, hits both alike. Prints each one's CPU per appraisal (from /proc) and the ratio.
// Absolute figures are higher than a lone verifier's (two processes share the core's caches).
//
// Usage: npx tsx bench/verifier-ab.ts ROOT_A ROOT_B [appraisals]
//   ROOT_*: a built checkout (e.g. `git worktree add /tmp/base main~3 && cp -a node_modules /tmp/base/ &&
//   (cd /tmp/base && npm run build)`); the same root twice with AB_NODE_ARGS="|--max-semi-space-size=64"
//   compares node flags instead (A's and B's flags separated by |), and AB_ENV="NAME=v|NAME=v" environments.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort } from '@joinguard/core/testing';
import { createSimCvm } from '@joinguard/simcvm';
import { httpCaller, processCpuSeconds } from './support.js';
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
const servers: { port: number; child: ChildProcess; bodies: string[]; root: string }[] = [];
for (const [i, root] of roots.entries()) {
  const dir = mkdtempSync(join(tmpdir(), 'jg-ab-'));
  const trust = sim.writeTrust(join(dir, 'trust'));
  writeFileSync(join(dir, 'policy.yaml'), YAML.stringify(sim.goodPolicy()));
  const port = await freePort();
  writeFileSync(join(dir, 'v.yaml'), YAML.stringify({ listen: { host: '127.0.0.1', port }, dataDir: join(dir, 'data'), policy: { file: join(dir, 'policy.yaml') }, trust: { snpTestRoots: [trust.snpRootsPem] }, rateLimit: { attestPerMinute: 10_000_000 }, logLevel: 'warn' }));
  const child = spawn('taskset', ['-c', '0', process.execPath, ...(nodeArgs[i] ?? []), join(root!, 'services/cli/bin/joinguard.js'), 'serve', '--config', join(dir, 'v.yaml')], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_OPTIONS: '', ...envs[i] } });
  for (let k = 0; ; k++) { try { if ((await call(port, 'GET', '/healthz')).status === 200) break; } catch { if (k > 100) throw new Error('no start'); await new Promise((r) => setTimeout(r, 100)); } }
  servers.push({ port, child, bodies: [], root: root! });
}
for (const s of servers) for (let i = 0; i < n + 200; i++) {
  const c = JSON.parse((await call(s.port, 'GET', '/v1/challenge')).text) as { nonce: string };
  s.bodies.push(JSON.stringify(await sim.evidence({ nonce: c.nonce, runtimeData: { nodeName: `bench-worker-${i % 50}`, machine: `m-${i % 50}`, purpose: 'reattest' } })));
}
for (const s of servers) for (const b of s.bodies.splice(0, 200)) { const r = await call(s.port, 'POST', '/v1/attest', b); if (r.status !== 200) throw new Error(r.text.slice(0, 200)); }
const c0 = servers.map((s) => processCpuSeconds(s.child.pid) ?? NaN);
const t0 = performance.now();
let bad = 0;
await Promise.all(servers.flatMap((s) => Array.from({ length: 16 }, async () => { while (s.bodies.length) { const r = await call(s.port, 'POST', '/v1/attest', s.bodies.pop()!); if (r.status !== 200) bad++; } })));
const wall = (performance.now() - t0) / 1000;
const c1 = servers.map((s) => processCpuSeconds(s.child.pid) ?? NaN);
const ms = servers.map((_, i) => ((c1[i]! - c0[i]!) * 1000) / n);
console.log(`wall ${wall.toFixed(1)} s, ${bad} non-200; CPU per appraisal: ${servers.map((s, i) => `${s.root}${nodeArgs[i]?.length ? ' ' + nodeArgs[i]!.join(' ') : ''}${Object.keys(envs[i] ?? {}).length ? ' ' + JSON.stringify(envs[i]) : ''} ${ms[i]!.toFixed(3)} ms`).join(' | ')}; ratio ${(ms[1]! / ms[0]!).toFixed(3)}`);
for (const s of servers) s.child.kill('SIGTERM');
await sim.close(); closeHttp();
