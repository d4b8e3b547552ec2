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
  /** SIGKILL (no flush, no clean shutdown), then a new server on the same port and store directory. */
  killAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

function spawnReady(bin: string, args: string[]): Promise<ChildProcess> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise<ChildProcess>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 15_000);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    };
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.stderr!.removeAllListeners('data');
        proc.stderr!.resume();
        resolve(proc);
      }
    });
    proc.once('exit', onExit);
  });
}

/** nats-server with JetStream on a free loopback port and a fresh store directory; stopped by stop(). */
export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerBinary();
  if (bin === undefined) throw new Error('nats-server is not installed (apt-get install nats-server)');
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-nats-'));
  const port = await freePort();
  const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir];
  let proc = await spawnReady(bin, args);
  return {
    url: `127.0.0.1:${port}`,
    dir,
    get proc() {
      return proc;
    },
    async killAndRestart() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await exited;
      }
      proc = await spawnReady(bin, args);
    },
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
