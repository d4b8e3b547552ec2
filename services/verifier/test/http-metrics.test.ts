import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attest, fetcher, releaseKey, simHarness, type Fetch, type SimHarness } from './support/sim-verifier.js';

// /metrics of a fresh verifier after exactly: one challenge + one passing SNP appraisal, one released disk key,
// one refused key request. Each counter must show exactly that, so a missing or doubled increment fails.

let h: SimHarness;
let f: Fetch;
const node = 'metrics-node-0';

beforeAll(async () => {
  h = await simHarness({ nodeName: node });
  f = fetcher(h.v.url);
});
afterAll(async () => {
  await h?.close();
});

/** Prometheus text → sample lines keyed by `name{labels}` (labels as printed by prom-client). */
function samples(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    m.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return m;
}

describe('/metrics', () => {
  it('counts appraisals, key releases and refusals, the last verification per node, and appraisal latency', async () => {
    const before = Date.now() / 1000;
    const a = await attest(f, h.sim, { runtimeData: { nodeName: node, machine: `${node}-machine`, purpose: 'unlock' } });
    expect(a.status).toBe(200);
    expect(a.body.appraisal.verdict).toBe('pass');
    const released = await releaseKey(f, node, a.body.result);
    expect(released.status).toBe(200);
    const refused = await releaseKey(f, node, undefined);
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('KEYS_NO_RESULT');
    const after = Date.now() / 1000;

    const r = await f('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    const s = samples(text);

    expect(s.get('joinguard_appraisals_total{tee="snp",verdict="pass"}')).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('joinguard_appraisals_total{'))).toEqual(['joinguard_appraisals_total{tee="snp",verdict="pass"}']);
    expect(s.get('joinguard_key_releases_total{outcome="released"}')).toBe(1);
    expect(s.get('joinguard_key_releases_total{outcome="refused"}')).toBe(1);
    expect(s.get('joinguard_challenges_issued_total')).toBe(1);
    expect(s.get('joinguard_rejections_total{code="KEYS_NO_RESULT"}')).toBe(1);

    const last = s.get(`joinguard_node_last_verified_timestamp_seconds{node="${node}"}`);
    expect(last).toBeDefined();
    expect(last!).toBeGreaterThanOrEqual(Math.floor(before));
    expect(last!).toBeLessThanOrEqual(Math.ceil(after));

    // The latency histogram: one observation, cumulative buckets ending in +Inf, a positive sum.
    expect(s.get('joinguard_appraisal_duration_seconds_count{tee="snp"}')).toBe(1);
    const sum = s.get('joinguard_appraisal_duration_seconds_sum{tee="snp"}');
    expect(sum).toBeGreaterThan(0);
    const buckets = [...s.entries()]
      .map(([k, v]) => ({ m: /^joinguard_appraisal_duration_seconds_bucket\{le="([^"]+)",tee="snp"\}$/.exec(k), v }))
      .filter((b) => b.m)
      .map((b) => ({ le: b.m![1] === '+Inf' ? Infinity : Number(b.m![1]), v: b.v }));
    expect(buckets.length).toBeGreaterThan(5);
    expect(buckets.at(-1)).toEqual({ le: Infinity, v: 1 });
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]!.le).toBeGreaterThan(buckets[i - 1]!.le);
      expect(buckets[i]!.v).toBeGreaterThanOrEqual(buckets[i - 1]!.v);
    }
    // The observation sits in the first bucket whose bound is at least the observed duration.
    const first = buckets.find((b) => b.v === 1)!;
    expect(first.le).toBeGreaterThanOrEqual(sum!);
    expect(buckets.filter((b) => b.le < sum!).every((b) => b.v === 0)).toBe(true);

    // The P-384 implementation in use (auto picks Nettle where it loads, as here).
    expect([...s.entries()].filter(([k]) => k.startsWith('joinguard_crypto_backend_info{'))).toEqual([[expect.stringMatching(/^joinguard_crypto_backend_info\{operation="ecdsa_p384_verify",backend="nettle",library="nettle \d+\.\d+"\}$/), 1]]);

    // Its per-key tables: kept now, built and used since start (the process-wide binding other tests share).
    const tables = (what: string) => s.get(`joinguard_p384_key_tables{what="${what}"}`);
    for (const what of ['kept', 'built', 'verifications']) expect(tables(what), what).toBeGreaterThanOrEqual(0);
    expect(tables('built')).toBeGreaterThanOrEqual(tables('kept')!);

    // Node.js process metrics are there too, under the joinguard_ prefix.
    expect(text).toMatch(/^joinguard_process_cpu_user_seconds_total /m);
  });

  it('counts a failed appraisal under verdict="fail" and does not move the node’s last-verified time', async () => {
    const s0 = samples(await (await f('/metrics')).text());
    const last0 = s0.get(`joinguard_node_last_verified_timestamp_seconds{node="${node}"}`);
    const bad = await attest(f, h.sim, { runtimeData: { nodeName: node, machine: `${node}-machine`, purpose: 'unlock' }, tamper: { pcr: { index: 7, value: 'ef'.repeat(32) } } });
    expect(bad.body.appraisal.verdict).toBe('fail');
    const k = await releaseKey(f, node, bad.body.result);
    expect(k.body.code).toBe('KEYS_RESULT_FAILED');
    const s = samples(await (await f('/metrics')).text());
    expect(s.get('joinguard_appraisals_total{tee="snp",verdict="fail"}')).toBe(1);
    // The same VCEK a second time: its table is built now, or was already and is used.
    const used = (x: Map<string, number>) => (x.get('joinguard_p384_key_tables{what="built"}') ?? NaN) + (x.get('joinguard_p384_key_tables{what="verifications"}') ?? NaN);
    expect(used(s)).toBeGreaterThan(used(s0));
    expect(s.get('joinguard_appraisals_total{tee="snp",verdict="pass"}')).toBe(1);
    expect(s.get('joinguard_appraisal_duration_seconds_count{tee="snp"}')).toBe(2);
    expect(s.get('joinguard_key_releases_total{outcome="refused"}')).toBe(2);
    expect(s.get('joinguard_key_releases_total{outcome="released"}')).toBe(1);
    expect(s.get(`joinguard_node_last_verified_timestamp_seconds{node="${node}"}`)).toBe(last0);
  });
});
