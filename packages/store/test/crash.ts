import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { exportJWK } from 'jose';
import type { SigningKey } from '@joinguard/protocol';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

/**
 * Runs the append loop in a child process, waits until it has reported at least `minAppends` durable
 * records, then kills it with SIGKILL (no chance to flush or clean up). Returns the highest seq the child
 * reported as appended.
 */
export async function appendThenKill(opts: {
  backend: 'sqlite' | 'jetstream';
  target: string;
  log: string;
  key: SigningKey;
  minAppends: number;
  names?: Record<string, string>;
  /** what to kill first once `minAppends` are reported (e.g. the NATS server under the appender); the appender is killed after it */
  killFirst?: () => Promise<void>;
}): Promise<number> {
  const jwk = { ...(await exportJWK(opts.key.privateKey)), kid: opts.key.kid };
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'append-loop.ts'), opts.backend, opts.target, opts.log], {
    cwd: repoRoot,
    env: { ...process.env, JOINGUARD_TEST_JWK: JSON.stringify(jwk), JOINGUARD_TEST_NAMES: JSON.stringify(opts.names ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let lastSeq = 0;
  let seen = 0;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolvePromise, rejectPromise) => {
    const timer = setTimeout(() => rejectPromise(new Error(`append loop made no progress: ${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const l of lines) {
        lastSeq = Math.max(lastSeq, Number(l));
        seen++;
      }
      if (seen >= opts.minAppends && seen - lines.length < opts.minAppends) {
        clearTimeout(timer);
        // Appends reported while the server is being killed were acknowledged before it died: they count too.
        void (opts.killFirst ?? (async () => undefined))().then(
          () => {
            child.kill('SIGKILL');
            resolvePromise();
          },
          (e: unknown) => rejectPromise(e as Error),
        );
      }
    });
    child.once('exit', (code) => {
      if (seen < opts.minAppends) {
        clearTimeout(timer);
        rejectPromise(new Error(`append loop exited with ${code}: ${err}`));
      }
    });
  });
  await exited;
  return lastSeq;
}
