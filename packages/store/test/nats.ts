import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '@joinguard/core/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function natsServerBinary(): string | undefined {
  for (const p of ['/usr/bin/nats-server', '/usr/sbin/nats-server', '/usr/local/bin/nats-server']) {
    if (spawnSync(p, ['--version']).status === 0) return p;
  }
  const w = spawnSync('sh', ['-c', 'command -v nats-server']);
  return w.status === 0 ? w.stdout.toString().trim() : undefined;
}

export interface NatsServer {
  url: string;
  dir: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** nats-server with JetStream on a free loopback port and a fresh store directory; stopped by stop(). */
export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerBinary();
  if (bin === undefined) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-nats-'));
  const port = await freePort();
  const proc = spawn(bin, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 15_000);
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    });
  });
  proc.stderr!.resume();
  return {
    url: `127.0.0.1:${port}`,
    dir,
    proc,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
