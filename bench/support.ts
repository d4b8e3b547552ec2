// What the verifier benchmarks share: CPU pinning, a process's CPU time, keep-alive HTTP calls, and stopping
// a verifier.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';

/** The `taskset -c CPU` prefix, or nothing where taskset is missing. */
export function pinPrefix(cpu: number): string[] {
  return spawnSync('taskset', ['-c', String(cpu), 'true']).status === 0 ? ['taskset', '-c', String(cpu)] : [];
}

const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU seconds in a /proc stat file, or undefined when it cannot be read. */
function statCpuSeconds(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticks;
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process and all its threads so far (Linux /proc), or undefined elsewhere. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of each thread of a process so far, by thread id (Linux /proc; empty elsewhere). */
export function threadCpuSeconds(pid: number | undefined): Map<string, number> {
  const m = new Map<string, number>();
  if (pid === undefined) return m;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return m;
  }
  for (const t of tids) {
    const s = statCpuSeconds(`/proc/${pid}/task/${t}/stat`);
    if (s !== undefined) m.set(t, s);
  }
  return m;
}

/** A thread's name and id, e.g. "node#1234" (Linux /proc; "#1234" elsewhere). */
export function threadName(pid: number | undefined, tid: string): string {
  try {
    return `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()}#${tid}`;
  } catch {
    return `#${tid}`;
  }
}

export type Call = (port: number, method: string, path: string, body?: string) => Promise<{ status: number; text: string }>;

/** HTTP requests to 127.0.0.1 over one keep-alive agent; `close` ends its sockets. */
export function httpCaller(maxSockets: number): { call: Call; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const call: Call = (port, method, path, body) =>
    new Promise((resolve, reject) => {
      const headers = body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {};
      const req = request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  return { call, close: () => agent.destroy() };
}

/** Stops a verifier started by a bench and, once it has exited (its store closed), removes its folder. */
export async function stopVerifier(child: ChildProcess, dir: string): Promise<void> {
  const exited = child.exitCode === null && child.signalCode === null ? once(child, 'exit') : Promise.resolve();
  child.kill('SIGTERM');
  await exited;
  rmSync(dir, { recursive: true, force: true });
}
