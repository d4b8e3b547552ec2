import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, type VerifierConfig } from '../src/config.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';
import { startNatsServer, type NatsServer } from '../../../packages/store/test/nats.js';
import { attest, fetcher, simHarness, type SimHarness } from './support/sim-verifier.js';

// /readyz answers 200 while the store answers and 503 when it does not (promptly: a readiness probe that hangs
// is as bad as a wrong answer); /healthz answers as long as the process does.

const running: RunningVerifier[] = [];
const sims: SimHarness[] = [];
let nats: NatsServer | undefined;
afterAll(async () => {
  for (const v of running) await Promise.race([v.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  for (const h of sims) await h.sim.close();
  await nats?.stop();
});

function baseConfig(name: string): VerifierConfig {
  const dir = mkdtempSync(join(tmpdir(), `jg-ready-${name}-`));
  return { ...defaultConfig(dir), listen: { host: '127.0.0.1', port: 0 }, logLevel: 'silent' };
}

async function ready(v: RunningVerifier): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = Date.now();
  const r = await fetch(v.url + '/readyz', { signal: AbortSignal.timeout(15_000) });
  return { status: r.status, body: await r.json(), ms: Date.now() - t0 };
}

describe('/readyz', () => {
  it('is ready with an open SQLite store and not ready once the store is closed', async () => {
    const h = await simHarness({ nodeName: 'ready-node-0' });
    sims.push(h);
    const v = h.v;
    running.push(v);
    expect(await ready(v)).toMatchObject({ status: 200, body: { status: 'ready' } });
    await v.store.close();
    const r = await ready(v);
    expect(r).toMatchObject({ status: 503, body: { status: 'not ready' } });
    expect((await fetch(v.url + '/healthz')).status).toBe(200);
    // Challenges need no store, and readiness is asked afresh each time (no cached answer).
    expect((await fetch(v.url + '/v1/challenge')).status).toBe(200);
    expect((await ready(v)).status).toBe(503);
    // A request that needs the store is the verifier's fault: 500, with the code but none of the internals.
    const a = await attest(fetcher(v.url), h.sim);
    expect(a.status).toBe(500);
    expect(a.body).toEqual({ code: expect.stringMatching(/^[A-Z][A-Z0-9_]+$/), message: 'internal error', details: {} });
  });

  it('is ready with a JetStream store and answers 503 within seconds once NATS is gone', async () => {
    nats = await startNatsServer();
    const cfg = baseConfig('jetstream');
    const v = await startVerifier({ ...cfg, store: { kind: 'jetstream', servers: [nats.url], replicas: 1, prefix: `ready${process.pid}` } });
    running.push(v);
    expect(await ready(v)).toMatchObject({ status: 200, body: { status: 'ready' } });
    await nats.stop();
    nats = undefined;
    const r = await ready(v);
    expect(r).toMatchObject({ status: 503, body: { status: 'not ready' } });
    expect(r.ms).toBeLessThan(4500); // the JetStream request itself would wait 5 s
    expect((await fetch(v.url + '/healthz')).status).toBe(200);
  });
});
