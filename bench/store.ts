// Append and audit throughput of both record stores.
//   npx tsx bench/store.ts [records]
// SQLite: a file in a temp dir (WAL, synchronous=FULL: every append is an fsynced commit).
// JetStream: a nats-server -js started on a free loopback port with its store in a temp dir (R1).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '@joinguard/core/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@joinguard/protocol';
import type { RecordDraft } from '@joinguard/protocol';
import { openJetStreamStore, openSqliteStore } from '@joinguard/store';
import type { RecordStore } from '@joinguard/store';

const N = Number(process.argv[2] ?? 2000);

function draft(i: number): RecordDraft {
  return {
    kind: 'appraisal',
    log: 'attest',
    node: `worker-${i % 50}`,
    tee: 'snp',
    verdict: 'pass',
    purpose: 'reattest',
    // About the size of an appraisal record that keeps evidence by digest: ~40 checks.
    body: {
      evidenceSha256: 'ab'.repeat(32),
      checks: Array.from({ length: 40 }, (_, k) => ({ name: `check.${k}`, outcome: 'pass', expected: 'cd'.repeat(16), actual: 'cd'.repeat(16) })),
    },
  };
}

async function measure(label: string, store: RecordStore, keys: { keys: object[] }, concurrency: number): Promise<void> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) {
        const i = next++;
        await store.append(draft(i));
      }
    }),
  );
  const t1 = performance.now();
  const v = await store.verifyChain('attest', keys as never);
  const t2 = performance.now();
  if (!v.ok) throw new Error(`chain broken: ${v.reason}`);
  const page = await store.query({ node: 'worker-7', limit: 1000 });
  const t3 = performance.now();
  console.log(
    `${label.padEnd(34)} append ${(N / ((t1 - t0) / 1000)).toFixed(0).padStart(6)} records/s   ` +
      `verifyChain ${(v.count / ((t2 - t1) / 1000)).toFixed(0).padStart(6)} records/s   ` +
      `query(node) ${page.records.length} records in ${(t3 - t2).toFixed(0)} ms`,
  );
}

const key = await generateSigningKey();
const signer = { kid: key.kid, privateKey: key.privateKey };
const keys = { keys: [key.publicJwk] };
console.log(`${N} records per run, ES256 signatures, node ${process.version}`);

for (const concurrency of [1, 16]) {
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-bench-'));
  const s = openSqliteStore({ path: join(dir, 'records.db'), signer });
  await measure(`sqlite (file, ${concurrency} in flight)`, s, keys, concurrency);
  await s.close();
  rmSync(dir, { recursive: true, force: true });
}

const dir = mkdtempSync(join(tmpdir(), 'joinguard-bench-nats-'));
const port = await freePort();
const nats = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
await new Promise<void>((resolve, reject) => {
  let log = '';
  nats.once('error', reject);
  nats.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.includes('Server is ready')) resolve();
  });
});
try {
  let k = 0;
  for (const [concurrency, replicas] of [
    [1, 1],
    [16, 1],
    [16, 3],
  ] as const) {
    const stores: RecordStore[] = [];
    const names = { stream: `BENCH${++k}`, subjectPrefix: `bench${k}.records`, nonceBucket: `b${k}-n`, nodeBucket: `b${k}-nodes`, indexBucket: `b${k}-ids` };
    for (let r = 0; r < replicas; r++) stores.push(await openJetStreamStore({ servers: `127.0.0.1:${port}`, signer, ...names }));
    // Several verifier replicas appending to one log: each store instance is its own connection.
    const fanout: RecordStore =
      replicas === 1
        ? stores[0]!
        : ({ ...stores[0]!, append: (d: RecordDraft) => stores[Math.floor(Math.random() * replicas)]!.append(d), verifyChain: stores[0]!.verifyChain.bind(stores[0]!), query: stores[0]!.query.bind(stores[0]!) } as RecordStore);
    await measure(`jetstream R1 (${concurrency} in flight, ${replicas} writer${replicas > 1 ? 's' : ''})`, fanout, keys, concurrency);
    for (const s of stores) await s.close();
  }
} finally {
  nats.kill('SIGTERM');
  await new Promise((r) => nats.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
