import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig, type VerifierConfig } from '../src/config.js';
import { startVerifier } from '../src/run.js';

// What startVerifier refuses, and what it leaves behind when it does: every file the configuration names is
// read before the signing keys and the store are opened, and a store remembers the disk-key secret it served.

function base(): { dir: string; config: VerifierConfig } {
  const dir = mkdtempSync(join(tmpdir(), 'jg-start-'));
  const config: VerifierConfig = { ...defaultConfig(join(dir, 'data')), listen: { host: '127.0.0.1', port: 0 }, logLevel: 'silent' };
  return { dir, config };
}

async function refusal(config: VerifierConfig): Promise<{ code?: string; message?: string; kind?: string }> {
  try {
    const v = await startVerifier(config, { listen: false });
    await v.close();
  } catch (e) {
    return e as { code?: string; message?: string; kind?: string };
  }
  throw new Error('the verifier started');
}

describe('verifier start', () => {
  it('names the setting of a file it cannot read, before it writes keys, secrets or store', async () => {
    for (const [setting, edit] of [
      ['tls.key', (c: VerifierConfig, d: string) => ({ ...c, tls: { cert: join(d, 'cert.pem'), key: join(d, 'missing.key') } })],
      ['tls.cert', (c: VerifierConfig, d: string) => ({ ...c, tls: { cert: join(d, 'missing.pem'), key: join(d, 'key.pem') } })],
      ['trust.snpTestRoots[1]', (c: VerifierConfig, d: string) => ({ ...c, trust: { ...c.trust, snpTestRoots: [join(d, 'cert.pem'), join(d, 'gone.pem')] } })],
    ] as const) {
      const { dir, config } = base();
      writeFileSync(join(dir, 'cert.pem'), 'not read far enough to matter');
      writeFileSync(join(dir, 'key.pem'), 'x');
      const e = await refusal(edit(config, dir));
      expect(e.code, setting).toBe('CONFIG_FILE_UNREADABLE');
      expect(e.kind).toBe('input');
      expect(e.message).toContain(`${setting}: `);
      expect(e.message).toContain('ENOENT');
      expect(existsSync(config.dataDir) ? readdirSync(config.dataDir) : [], setting).toEqual([]);
    }
  });

  it('refuses a token file it cannot read or that is not a list of named, hashed tokens with roles', async () => {
    const cases: [string, string | undefined][] = [
      ['AUTH_TOKENS_UNREADABLE', undefined],
      ['AUTH_TOKENS_UNREADABLE', 'tokens: [unclosed\n'],
      ['AUTH_TOKENS_INVALID', 'tokens: 3\n'],
      ['AUTH_TOKENS_INVALID', 'tokens:\n  - name: ops\n    sha256: abc\n    roles: [admin]\n'],
      ['AUTH_TOKENS_INVALID', `tokens:\n  - name: ops\n    sha256: ${'ab'.repeat(32)}\n`],
    ];
    for (const [code, text] of cases) {
      const { dir, config } = base();
      const tokensFile = join(dir, 'tokens.yaml');
      if (text !== undefined) writeFileSync(tokensFile, text);
      const e = await refusal({ ...config, auth: { ...config.auth, tokensFile } });
      expect(e.code, text).toBe(code);
      expect(e.message).toContain(tokensFile);
      expect(existsSync(config.dataDir) ? readdirSync(config.dataDir) : [], text).toEqual([]);
    }
  });

  it('refuses a store that served another disk-key secret or cluster id, and starts again with its own', async () => {
    const { dir, config } = base();
    const first = await startVerifier(config, { listen: false });
    await first.close();
    const other = join(dir, 'other-master.key');
    expect((await refusal({ ...config, keyBroker: { ...config.keyBroker, masterSecretFile: other } })).code).toBe('CONFIG_DISK_SECRET_MISMATCH');
    expect((await refusal({ ...config, clusterId: 'renamed' })).code).toBe('CONFIG_DISK_SECRET_MISMATCH');
    const again = await startVerifier(config, { listen: false });
    await again.close();
    // With the key broker switched off there are no disk keys to disagree on.
    const off = await startVerifier({ ...config, clusterId: 'renamed', keyBroker: { ...config.keyBroker, enabled: false } }, { listen: false });
    await off.close();
  });
});
