import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@joinguard/core/testing';
import type { AttestResponse } from '@joinguard/protocol';
import { AUDITOR_TOKEN, attest, challenge, fetcher, releaseKey, simHarness, type SimHarness } from './support/sim-verifier.js';

// `joinguard serve --config FILE` as a real process: it listens (port 0: a free loopback port, read from its
// start-up line), answers, writes pino JSON logs that never carry an authorization header's value, and on
// SIGTERM stops accepting, lets the request in flight finish, closes the store and exits 0.

const BIN = join(repoRoot, 'services/cli/bin/joinguard.js');
let h: SimHarness;
let configFile: string;
let proc: ChildProcess | undefined;
let stdout = '';
let stderr = '';

beforeAll(async () => {
  execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  // The harness writes trust, policy and tokens; the verifier runs in the child, not here.
  h = await simHarness({ nodeName: 'serve-node-0', start: false });
  const c = h.config;
  configFile = join(h.dir, 'verifier.yaml');
  writeFileSync(
    configFile,
    YAML.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      clusterId: c.clusterId,
      dataDir: 'data',
      policy: { file: c.policy.file },
      trust: { snpTestRoots: c.trust.snpTestRoots, tdxTestRoots: c.trust.tdxTestRoots },
      auth: { tokensFile: c.auth.tokensFile },
      logLevel: 'info',
    }),
  );
});
afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  await h?.sim.close();
});

function waitFor<T>(what: string, ms: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      try {
        const v = await probe();
        if (v !== undefined) return resolve(v);
      } catch {
        // not yet
      }
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      setTimeout(tick, 25);
    };
    void tick();
  });
}

function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
}

const logLines = () =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: number; time: number; msg: string; reqId?: string; req?: { method: string; url: string }; res?: { statusCode: number } });

describe('joinguard serve', () => {
  it('serves, logs JSON without credentials, and on SIGTERM finishes the request in flight and exits 0', async () => {
    proc = spawn(process.execPath, [BIN, 'serve', '--config', configFile], { cwd: h.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const base = await waitFor('the start-up line', 20_000, () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1]);
    await waitFor('/healthz', 10_000, async () => ((await fetch(`${base}/healthz`)).status === 200 ? true : undefined));
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const f = fetcher(base);

    // Requests carrying secrets in the authorization header: an auditor token, a result JWT, a wrong token.
    const a = await attest(f, h.sim, { runtimeData: { nodeName: 'serve-node-0', machine: 'serve-machine-0', purpose: 'unlock' } });
    expect(a.status).toBe(200);
    expect(a.body.appraisal.verdict).toBe('pass');
    expect((await releaseKey(f, 'serve-node-0', a.body.result)).status).toBe(200);
    expect((await f('/v1/records', { headers: { authorization: `Bearer ${AUDITOR_TOKEN}` } })).status).toBe(200);
    const wrongToken = 'wrong-token-that-must-not-be-logged-4242';
    expect((await f('/v1/records', { headers: { authorization: `Bearer ${wrongToken}` } })).status).toBe(401);

    // An attestation whose body arrives in two halves: SIGTERM lands between them.
    const { nonce } = await challenge(f);
    const body = Buffer.from(JSON.stringify(await h.sim.evidence({ nonce, runtimeData: { nodeName: 'serve-node-0', machine: 'serve-machine-0', purpose: 'unlock' } })));
    const port = Number(new URL(base).port);
    let responded = false;
    const inFlight = new Promise<{ status: number; body: AttestResponse }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/attest', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          responded = true;
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AttestResponse });
        });
      });
      req.on('error', reject);
      req.write(body.subarray(0, body.length >> 1));
      // The server has routed the request once it logged it.
      void waitFor('the in-flight request to be logged', 10_000, () => (logLines().some((l) => l.msg === 'incoming request' && l.req?.url === '/v1/attest' && l.reqId && !logLines().some((m) => m.reqId === l.reqId && m.res)) ? true : undefined))
        .then(async () => {
          proc!.kill('SIGTERM');
          await waitFor('the shutdown line', 5_000, () => (stderr.includes('SIGTERM: shutting down') ? true : undefined));
          await new Promise((r) => setTimeout(r, 300));
          // Still running: it waits for this request.
          expect(proc!.exitCode).toBeNull();
          expect(responded).toBe(false);
          req.end(body.subarray(body.length >> 1));
        })
        .catch(reject);
    });

    const t0 = Date.now();
    const done = await inFlight;
    expect(done.status).toBe(200);
    expect(done.body.appraisal.verdict).toBe('pass');
    const { code, signal } = await Promise.race([exited(proc), new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no exit within 5 s\n${stderr}`)), 5000))]);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    // Gone: nothing listens any more.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();

    // Logs: every stdout line is a pino JSON object; requests are logged with their id, method, url, status.
    const lines = logLines();
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) {
      expect(typeof l.level).toBe('number');
      expect(typeof l.time).toBe('number');
      expect(typeof l.msg).toBe('string');
    }
    const completed = lines.filter((l) => l.msg === 'request completed');
    expect(completed.some((l) => l.res?.statusCode === 200 && lines.some((m) => m.reqId === l.reqId && m.req?.url === '/v1/attest'))).toBe(true);
    const logs = stdout + stderr;
    for (const secret of [AUDITOR_TOKEN, wrongToken, a.body.result, a.body.result.split('.')[2]!]) expect(logs).not.toContain(secret);
    expect(logs.toLowerCase()).not.toMatch(/bearer /);

    // The store was closed cleanly: the offline audit verifies every chain, including the in-flight appraisal.
    const audit = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--store', join(h.dir, 'data/records.sqlite'), '--keys', join(h.dir, 'data/signing-keys'), '--json'], { encoding: 'utf8' });
    expect(audit.status, audit.stdout + audit.stderr).toBe(0);
    const report = JSON.parse(audit.stdout) as { verified: boolean; chains: Array<{ log: string; count: number }> };
    expect(report.verified).toBe(true);
    expect(report.chains.find((c) => c.log === 'appraisals')!.count).toBe(2);
  });

  it('exits non-zero with a clear message on an invalid configuration', () => {
    const bad = join(h.dir, 'bad.yaml');
    writeFileSync(bad, 'listen:\n  port: 70000\n');
    const r = spawnSync(process.execPath, [BIN, 'serve', '--config', bad], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/CONFIG_INVALID: .*\/listen\/port/);
  });
});
