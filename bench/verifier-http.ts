// Appraisals per second over HTTP, on one core, for a simulated SNP + vTPM + event-log bundle; latency at a
// fixed offered rate; and raw ECDSA P-384 verifications per second on the same core in the same run.
//
// Usage: npx tsx bench/verifier-http.ts [--seconds 8] [--rate 500] [--latency-seconds S] [--concurrency 32] [--store sqlite|memory]
//        [--p384 auto|nettle|openssl]   (the verifier's crypto.p384; auto, its default, is Nettle where it loads)
//        [--warmup 4000]   (appraisals before measuring, under the same concurrent load)
//
// The warm-up matters: V8 keeps optimising the verifier's functions (fastify, the appraisal engine, the
// store) for its first few thousand appraisals, several hundred TurboFan compilations on the verifier's core
// (--trace-opt), and a measurement that starts earlier counts that one-off cost in every appraisal. A
// verifier runs for days; the figures here are its steady state.
// (the open-loop phase lasts --latency-seconds, by default three quarters of --seconds; a longer one gives a
// steadier p99)
//
// The verifier runs as `joinguard serve` in a child process pinned to CPU 0 (taskset); this process, pinned
// to CPU 1, prepares the evidence (each bundle needs its own challenge, fetched before measuring) and
// drives the load over keep-alive HTTP. Goals (issue 5): >= 1,000 appraisals/s and p99 < 50 ms at 500/s.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort, repoRoot } from '@joinguard/core/testing';
import { createSimCvm } from '@joinguard/simcvm';
import type { Evidence } from '@joinguard/protocol';
import { httpCaller, pinPrefix, processCpuSeconds, stopVerifier } from './support.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const seconds = Number(args.get('seconds') ?? 8);
const rate = Number(args.get('rate') ?? 500);
const latencySeconds = Number(args.get('latency-seconds') ?? seconds * 0.75);
const concurrency = Number(args.get('concurrency') ?? 32);
const storeKind = args.get('store') ?? 'sqlite';
const p384 = args.get('p384') ?? 'auto';
const warmupCount = Math.max(10, Number(args.get('warmup') ?? 4000));

spawnSync('taskset', ['-cp', '1', String(process.pid)]);
const { call, close: closeHttp } = httpCaller(Math.max(concurrency, 64));

/** Raw P-384 verifies per second of each backend of @joinguard/snp, on the verifier's core. */
function rawBackends(ms: number): Record<string, number> {
  const [cmd, ...pre] = pinPrefix(0);
  const argv = [...pre, process.execPath, '--import', 'tsx', join(repoRoot, 'bench/p384-raw.ts'), String(ms)];
  const r = cmd ? spawnSync(cmd, argv, { encoding: 'utf8', cwd: repoRoot }) : spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd: repoRoot });
  try {
    return JSON.parse(r.stdout) as Record<string, number>;
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jg-bench-'));
  const sim = await createSimCvm({ tee: 'snp', nodeName: 'bench-worker-0', vtpm: 'software' });
  const trust = sim.writeTrust(join(dir, 'trust'));
  writeFileSync(join(dir, 'policy.yaml'), YAML.stringify(sim.goodPolicy()));
  const port = await freePort();
  const config = {
    listen: { host: '127.0.0.1', port },
    dataDir: join(dir, 'data'),
    ...(storeKind === 'memory' ? { store: { kind: 'sqlite', path: ':memory:' } } : {}),
    policy: { file: join(dir, 'policy.yaml') },
    trust: { snpTestRoots: [trust.snpRootsPem] },
    rateLimit: { attestPerMinute: 10_000_000 },
    crypto: { p384 },
    logLevel: 'warn',
  };
  writeFileSync(join(dir, 'verifier.yaml'), YAML.stringify(config));
  const [cmd, ...pre] = pinPrefix(0);
  const argv = [...pre, process.execPath, join(repoRoot, 'services/cli/bin/joinguard.js'), 'serve', '--config', join(dir, 'verifier.yaml')];
  // BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the verifier alone.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  argv.splice(pre.length + 1, 0, ...nodeArgs);
  const env = { ...process.env, NODE_OPTIONS: '' };
  const child: ChildProcess = cmd ? spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit'], env }) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env });
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await call(port, 'GET', '/healthz')).status === 200) break;
      } catch {
        if (i > 100) throw new Error('verifier did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const throughputCount = Math.ceil(seconds * 1400);
    const latencyCount = Math.ceil(latencySeconds * rate);
    process.stderr.write(`preparing ${throughputCount + latencyCount + warmupCount} evidence bundles...\n`);
    const bodies: string[] = [];
    for (let i = 0; i < throughputCount + latencyCount + warmupCount; i++) {
      const c = JSON.parse((await call(port, 'GET', '/v1/challenge')).text) as { nonce: string };
      const ev: Evidence = await sim.evidence({ nonce: c.nonce, runtimeData: { nodeName: `bench-worker-${i % 50}`, machine: `m-${i % 50}`, purpose: 'reattest' } });
      bodies.push(JSON.stringify(ev));
    }
    const bundleBytes = Buffer.byteLength(bodies[0]!);

    // Warm-up (see above), and a check that the bundles really pass.
    const warm = bodies.splice(0, warmupCount);
    let warmNext = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (warmNext < warm.length) {
          const r = await call(port, 'POST', '/v1/attest', warm[warmNext++]!);
          if (r.status !== 200 || !r.text.includes('"verdict":"pass"')) throw new Error(`warm-up appraisal failed: ${r.status} ${r.text.slice(0, 300)}`);
        }
      }),
    );

    // Closed loop: `concurrency` requests in flight until the bundles run out.
    const tp = bodies.splice(0, throughputCount);
    let next = 0;
    let failed = 0;
    const cpu0 = processCpuSeconds(child.pid);
    const t0 = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < tp.length) {
          const b = tp[next++]!;
          const r = await call(port, 'POST', '/v1/attest', b);
          if (r.status !== 200) failed++;
        }
      }),
    );
    const tpSec = Number(process.hrtime.bigint() - t0) / 1e9;
    const perSec = tp.length / tpSec;
    const cpu1 = processCpuSeconds(child.pid);
    const cpuMs = cpu0 !== undefined && cpu1 !== undefined ? ((cpu1 - cpu0) * 1000) / tp.length : undefined;

    // Open loop at a fixed rate: each request starts on its schedule whether or not earlier ones finished.
    const lat = bodies.splice(0, latencyCount);
    const latencies: number[] = [];
    const start = performance.now();
    await Promise.all(
      lat.map(
        (b, i) =>
          new Promise<void>((resolve) => {
            const due = start + (i * 1000) / rate;
            setTimeout(async () => {
              const s = performance.now();
              const r = await call(port, 'POST', '/v1/attest', b);
              latencies.push(performance.now() - s);
              if (r.status !== 200) failed++;
              resolve();
            }, Math.max(0, due - performance.now()));
          }),
      ),
    );
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;

    const backends = rawBackends(1500);
    // node:crypto's rate is the unit the CPU per appraisal is counted in, as in every stop's figures.
    const raw = backends.openssl ?? NaN;
    console.log(`verifier over HTTP, one core (taskset CPU 0), store ${storeKind}, bundle ${(bundleBytes / 1024).toFixed(1)} KiB (SNP report + vTPM quote + event log)`);
    console.log(`  throughput: ${perSec.toFixed(0)} appraisals/s (${tp.length} in ${tpSec.toFixed(2)} s, concurrency ${concurrency}, ${failed} non-200, after ${warm.length} warm-up appraisals)`);
    if (cpuMs !== undefined) {
      console.log(`  verifier CPU per appraisal (all its threads, /proc): ${cpuMs.toFixed(2)} ms, i.e. ${(1000 / cpuMs).toFixed(0)} appraisals/s on a core of its own`);
    }
    console.log(`  latency at ${rate}/s offered (${lat.length} requests): p50 ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
    console.log(`  raw ECDSA P-384 verify, same core: ${Object.entries(backends).map(([k, v]) => `${k} ${v.toFixed(0)}/s`).join(', ') || 'n/a'} (verifier configured with crypto.p384 ${p384}); appraisals per node:crypto verify: ${(perSec / raw).toFixed(2)}`);
    // The host's speed drifts between runs; the CPU of an appraisal counted in P-384 verifications of the same
    // run drifts much less, and is the figure to compare changes by.
    if (cpuMs !== undefined) console.log(`  verifier CPU per appraisal in raw P-384 verifies: ${((cpuMs * raw) / 1000).toFixed(2)} (1,000/s on a core that verifies ${raw.toFixed(0)}/s needs ${(raw / 1000).toFixed(2)})`);
    console.log(`  goals: >= 1000/s ${perSec >= 1000 ? 'met' : 'NOT met'}; p99 < 50 ms at 500/s ${rate === 500 && q(0.99) < 50 ? 'met' : rate === 500 ? 'NOT met' : 'n/a'}`);
  } finally {
    const stopped = stopVerifier(child, dir);
    await sim.close();
    closeHttp();
    await stopped;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
