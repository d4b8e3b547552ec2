import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JoinguardError } from '@joinguard/core';
import { loadConfig } from '../src/config.js';

function cfgFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'jg-cfg-'));
  const f = join(dir, 'verifier.yaml');
  writeFileSync(f, text);
  return f;
}

function thrown(f: () => unknown): JoinguardError {
  try {
    f();
  } catch (e) {
    if (e instanceof JoinguardError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('verifier configuration', () => {
  it('resolves paths against the config file and keeps the embedded defaults', () => {
    const f = cfgFile('clusterId: prod-1\ndataDir: ./data\nlisten: { port: 9443 }\npolicy: { file: policy.yaml }\n');
    const c = loadConfig({ file: f, env: {} });
    const dir = join(f, '..');
    expect(c.clusterId).toBe('prod-1');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 9443 });
    expect(c.dataDir).toBe(join(dir, 'data'));
    expect(c.store).toEqual({ kind: 'sqlite', path: join(dir, 'data', 'records.sqlite') });
    expect(c.policy.file).toBe(join(dir, 'policy.yaml'));
    expect(c.trust.snpTestRoots).toEqual([]);
    expect(c.challenge.ttlSeconds).toBe(300);
  });

  it('lets environment variables override the file', () => {
    const f = cfgFile('listen: { port: 9443 }\n');
    const c = loadConfig({ file: f, env: { JOINGUARD_LISTEN_PORT: '7000', JOINGUARD_NATS_SERVERS: 'nats://127.0.0.1:4222, nats://127.0.0.2:4222', JOINGUARD_CLUSTER_ID: 'x' } });
    expect(c.listen.port).toBe(7000);
    expect(c.clusterId).toBe('x');
    expect(c.store).toEqual({ kind: 'jetstream', servers: ['nats://127.0.0.1:4222', 'nats://127.0.0.2:4222'], replicas: 3, prefix: 'joinguard' });
  });

  it('keeps the JetStream replicas and prefix of the file when JOINGUARD_NATS_SERVERS names the servers', () => {
    const f = cfgFile('store: { kind: jetstream, servers: [nats://10.0.0.1:4222], replicas: 5, prefix: prod }\n');
    expect(loadConfig({ file: f, env: { JOINGUARD_NATS_SERVERS: 'nats://10.0.0.9:4222' } }).store).toEqual({ kind: 'jetstream', servers: ['nats://10.0.0.9:4222'], replicas: 5, prefix: 'prod' });
    // A SQLite store in the file has nothing to keep: the variable switches to JetStream with its defaults.
    const g = cfgFile('store: { kind: sqlite, path: ./r.sqlite }\n');
    expect(loadConfig({ file: g, env: { JOINGUARD_NATS_SERVERS: 'nats://10.0.0.9:4222' } }).store).toEqual({ kind: 'jetstream', servers: ['nats://10.0.0.9:4222'], replicas: 3, prefix: 'joinguard' });
  });

  it('refuses client-certificate roles without a client CA, which would never be asked for', () => {
    const e = thrown(() => loadConfig({ file: cfgFile('tls: { cert: c.pem, key: k.pem }\nauth: { mtlsRoles: { ops: [admin] } }\n'), env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('/auth/mtlsRoles');
    expect(e.message).toContain('/tls/clientCa');
    expect(thrown(() => loadConfig({ file: cfgFile('auth: { mtlsRoles: { ops: [admin] } }\n'), env: {} })).code).toBe('CONFIG_INVALID');
    expect(loadConfig({ file: cfgFile('tls: { cert: c.pem, key: k.pem, clientCa: ca.pem }\nauth: { mtlsRoles: { ops: [admin] } }\n'), env: {} }).auth.mtlsRoles).toEqual({ ops: ['admin'] });
  });

  it('takes listen.trustedProxies as IP addresses or CIDR ranges, and names the entries that are not', () => {
    expect(loadConfig({ file: cfgFile('listen: { trustedProxies: [10.0.0.1, 10.1.0.0/16, "fd00::/8", "::1"] }\n'), env: {} }).listen.trustedProxies).toEqual(['10.0.0.1', '10.1.0.0/16', 'fd00::/8', '::1']);
    const e = thrown(() => loadConfig({ file: cfgFile('listen: { trustedProxies: [10.0.0.1, proxy.local, 10.0.0.0/33, "1.2.3.4/8/1"] }\n'), env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('/listen/trustedProxies/1 "proxy.local"');
    expect(e.message).toContain('/listen/trustedProxies/2');
    expect(e.message).toContain('/listen/trustedProxies/3');
    expect(e.message).not.toContain('/listen/trustedProxies/0');
  });

  it('names every invalid setting', () => {
    const e = thrown(() => loadConfig({ file: cfgFile('listen: { port: 70000 }\nchallenge: { ttlSeconds: 1 }\nbogus: 1\n'), env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.kind).toBe('input');
    expect(e.message).toContain('/listen/port');
    expect(e.message).toContain('/challenge/ttlSeconds');
    expect(e.message).toContain('bogus');
  });

  it('takes policy.syncSeconds from 0 (only at start) to 3600, and refuses anything else', () => {
    expect(loadConfig({ file: cfgFile('policy: { syncSeconds: 0 }\n'), env: {} }).policy.syncSeconds).toBe(0);
    expect(loadConfig({ file: cfgFile('policy: { syncSeconds: 30 }\n'), env: {} }).policy.syncSeconds).toBe(30);
    expect(loadConfig({ file: cfgFile('{}\n'), env: {} }).policy.syncSeconds).toBeUndefined();
    for (const bad of ['-1', '1.5', '3601', '"10"']) {
      const e = thrown(() => loadConfig({ file: cfgFile(`policy: { syncSeconds: ${bad} }\n`), env: {} }));
      expect(e.message, bad).toContain('/policy/syncSeconds');
    }
  });

  it('takes crypto.p384 as auto (default), nettle or openssl, from the file or JOINGUARD_CRYPTO_P384', () => {
    expect(loadConfig({ file: cfgFile('{}\n'), env: {} }).crypto.p384).toBe('auto');
    expect(loadConfig({ file: cfgFile('crypto: { p384: openssl }\n'), env: {} }).crypto.p384).toBe('openssl');
    expect(loadConfig({ file: cfgFile('crypto: { p384: openssl }\n'), env: { JOINGUARD_CRYPTO_P384: 'nettle' } }).crypto.p384).toBe('nettle');
    for (const file of ['crypto: { p384: boringssl }\n', 'crypto: { p256: nettle }\n']) {
      const e = thrown(() => loadConfig({ file: cfgFile(file), env: {} }));
      expect(e.code, file).toBe('CONFIG_INVALID');
      expect(e.message, file).toContain('/crypto');
    }
    expect(thrown(() => loadConfig({ env: { JOINGUARD_CRYPTO_P384: 'fast' } })).message).toContain('/crypto/p384');
  });

  it('takes crypto.p384KeyTables as true (default) or false, from the file or JOINGUARD_CRYPTO_P384_KEY_TABLES', () => {
    expect(loadConfig({ file: cfgFile('{}\n'), env: {} }).crypto.p384KeyTables).toBe(true);
    expect(loadConfig({ file: cfgFile('crypto: { p384KeyTables: false }\n'), env: {} }).crypto).toEqual({ p384: 'auto', p384KeyTables: false });
    expect(loadConfig({ file: cfgFile('crypto: { p384KeyTables: true }\n'), env: { JOINGUARD_CRYPTO_P384_KEY_TABLES: 'false' } }).crypto.p384KeyTables).toBe(false);
    expect(loadConfig({ env: { JOINGUARD_CRYPTO_P384_KEY_TABLES: 'true' } }).crypto.p384KeyTables).toBe(true);
    for (const bad of ['no', '0', 'TRUE']) {
      const e = thrown(() => loadConfig({ env: { JOINGUARD_CRYPTO_P384_KEY_TABLES: bad } }));
      expect(e.code, bad).toBe('CONFIG_INVALID');
      expect(e.message, bad).toContain('/crypto/p384KeyTables');
    }
    expect(thrown(() => loadConfig({ file: cfgFile('crypto: { p384KeyTables: 1 }\n'), env: {} })).message).toContain('/crypto/p384KeyTables');
  });

  it('refuses a bad port from the environment and unreadable or malformed files', () => {
    expect(thrown(() => loadConfig({ env: { JOINGUARD_LISTEN_PORT: 'eighty' } })).code).toBe('CONFIG_INVALID');
    expect(thrown(() => loadConfig({ file: '/nonexistent/verifier.yaml', env: {} })).code).toBe('CONFIG_UNREADABLE');
    expect(thrown(() => loadConfig({ file: cfgFile('listen: [unclosed\n'), env: {} })).code).toBe('CONFIG_SYNTAX');
    expect(thrown(() => loadConfig({ file: cfgFile('- a\n- b\n'), env: {} })).code).toBe('CONFIG_INVALID');
  });

  it('has no setting that enables the test-only challenge override', () => {
    const e = thrown(() => loadConfig({ file: cfgFile('testing: { challengeOverride: true }\n'), env: {} }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('testing');
  });
});
