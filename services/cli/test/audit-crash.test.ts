import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyKeyRing, generateSigningKey, rotateKey, type SigningKey } from '@joinguard/protocol';
import { defaultConfig, hashToken, startVerifier } from '@joinguard/verifier';
import { appendThenKill } from '../../../packages/store/test/crash.js';
import { startNatsServer, type NatsServer } from '../../../packages/store/test/nats.js';
import { buildCli, cli, cliAsync, type CliRun } from './support.js';

/*
 * kill -9 of a process appending records, checked with the auditor's own tool: the child of
 * packages/store/test/crash.ts appends signed records and prints each seq once the store acknowledged it; it is
 * SIGKILLed mid-stream, then the bundled `joinguard audit verify` runs over what is left. Every log must verify
 * and hold at least every acknowledged record.
 *
 * SQLite: offline, `--store FILE --keys DIR`. `audit verify` opens only SQLite store files offline (no NATS
 * source), so the JetStream case goes through a verifier started on the very stream the child wrote to:
 * `--url URL --token T --jwks FILE` (the child's key and the verifier's own), which reads every log over
 * /v1/records and checks it with the given keys.
 */

const AUDITOR = 'audit-crash-auditor-token-0123456789';

let dir: string;
let key: SigningKey;
let keysDir: string;

type VerifyJson = { verified: boolean; chains: Array<{ log: string; ok: boolean; count: number; reason?: string }> };

function intact(r: CliRun, log: string): number {
  expect(r.stderr).toBe('');
  expect(r.code, r.stdout).toBe(0);
  const j = r.json as unknown as VerifyJson;
  expect(j.verified).toBe(true);
  expect(j.chains.length).toBeGreaterThan(0);
  for (const c of j.chains) expect(c.ok, `${c.log}: ${c.reason}`).toBe(true);
  const chain = j.chains.find((c) => c.log === log);
  expect(chain).toBeDefined();
  return chain!.count;
}

beforeAll(async () => {
  buildCli();
  dir = mkdtempSync(join(tmpdir(), 'jg-cli-audit-crash-'));
  key = await generateSigningKey();
  // A signing-keys folder as the verifier keeps it: keyring.json with the public key.
  keysDir = join(dir, 'signing-keys');
  mkdirSync(keysDir);
  writeFileSync(join(keysDir, 'keyring.json'), JSON.stringify(rotateKey(emptyKeyRing(), key.publicJwk, new Date(), 900)));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('joinguard audit verify after kill -9 of an appending process', () => {
  it('SQLite store file: exit 0, every log intact, every acknowledged record there (twice, appending to the survivor)', async () => {
    const path = join(dir, 'records.sqlite');
    for (let round = 0; round < 2; round++) {
      const acknowledged = await appendThenKill({ backend: 'sqlite', target: path, log: 'appraisals', key, minAppends: 40 + round * 17 });
      expect(acknowledged).toBeGreaterThanOrEqual(40 + round * 17);
      const count = intact(cli('audit', 'verify', '--store', path, '--keys', keysDir, '--json'), 'appraisals');
      expect(count).toBeGreaterThanOrEqual(acknowledged);
    }
    // The same file with another verifier's keys does not verify: the run above did check signatures.
    const other = await generateSigningKey();
    const otherJwks = join(dir, 'other-jwks.json');
    writeFileSync(otherJwks, JSON.stringify({ keys: [other.publicJwk] }));
    const r = cli('audit', 'verify', '--store', path, '--jwks', otherJwks, '--json');
    expect(r.code).toBe(1);
    expect(r.json?.verified).toBe(false);
  });

  describe('JetStream (through a verifier on the same stream)', () => {
    let nats: NatsServer;
    beforeAll(async () => {
      nats = await startNatsServer();
    });
    afterAll(async () => {
      await nats?.stop();
    });

    it('exit 0, every log intact, every acknowledged record there', async () => {
      // The names a verifier with store prefix "joinguard" uses (services/verifier/src/run.ts).
      const names = { stream: 'JOINGUARD_RECORDS', subjectPrefix: 'joinguard.records' };
      const acknowledged = await appendThenKill({ backend: 'jetstream', target: nats.url, log: 'appraisals', key, minAppends: 40, names });
      expect(acknowledged).toBeGreaterThanOrEqual(40);

      const vdir = join(dir, 'verifier');
      mkdirSync(vdir);
      const tokensFile = join(vdir, 'tokens.yaml');
      writeFileSync(tokensFile, `tokens:\n  - name: audit\n    sha256: ${hashToken(AUDITOR)}\n    roles: [auditor]\n`);
      const base = defaultConfig(join(vdir, 'data'));
      const v = await startVerifier({
        ...base,
        listen: { host: '127.0.0.1', port: 0 },
        store: { kind: 'jetstream', servers: [nats.url], replicas: 1, prefix: 'joinguard' },
        auth: { tokensFile, mtlsRoles: {} },
        logLevel: 'silent',
      });
      try {
        // The auditor's key set: the appending process's key and whatever keys the verifier itself signs with
        // (it may record, e.g., its policy at start).
        const own = (await (await fetch(`${v.url}/v1/keys/all`, { headers: { authorization: `Bearer ${AUDITOR}` } })).json()) as { keys: object[] };
        const both = join(dir, 'jwks-js.json');
        writeFileSync(both, JSON.stringify({ keys: [key.publicJwk, ...own.keys] }));
        const count = intact(await cliAsync('audit', 'verify', '--url', v.url, '--token', AUDITOR, '--jwks', both, '--json'), 'appraisals');
        expect(count).toBeGreaterThanOrEqual(acknowledged);
        const other = await generateSigningKey();
        const otherJwks = join(dir, 'other-jwks-js.json');
        writeFileSync(otherJwks, JSON.stringify({ keys: [other.publicJwk] }));
        const bad = await cliAsync('audit', 'verify', '--url', v.url, '--token', AUDITOR, '--jwks', otherJwks, '--json');
        expect(bad.code).toBe(1);
      } finally {
        await v.close();
      }
    });
  });
});
