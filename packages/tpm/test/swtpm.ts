import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePortPair } from '@joinguard/core/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throw-away swtpm (TPM 2.0, TCP) driven with tpm2-tools: an independent producer of real quotes. */
export class Swtpm {
  readonly dir: string;
  private pidFile: string;
  private tcti = '';

  private constructor(dir: string) {
    this.dir = dir;
    this.pidFile = join(dir, 'swtpm.pid');
  }

  static async start(): Promise<Swtpm> {
    const t = new Swtpm(mkdtempSync(join(tmpdir(), 'jg-swtpm-')));
    const server = await freePortPair();
    const ctrl = server + 1;
    execFileSync('swtpm', [
      'socket', '--tpm2', '--tpmstate', `dir=${t.dir}`, '--server', `type=tcp,port=${server},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${ctrl},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear', '--daemon', '--pid', `file=${t.pidFile}`,
    ], { stdio: 'ignore' });
    t.tcti = `swtpm:host=127.0.0.1,port=${server}`;
    for (let i = 0; i < 50; i++) {
      if (spawnSync('tpm2_getrandom', ['4'], { env: t.env() }).status === 0) return t;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.stop();
    throw new Error('swtpm did not come up');
  }

  env(): NodeJS.ProcessEnv {
    return { ...process.env, TPM2TOOLS_TCTI: this.tcti };
  }

  /** Runs a tpm2-tools command in the state dir and flushes transient objects (swtpm has no resource manager). */
  run(tool: string, args: string[]): string {
    const r = spawnSync(tool, args, { cwd: this.dir, env: this.env(), encoding: 'utf8' });
    spawnSync('tpm2_flushcontext', ['-t'], { cwd: this.dir, env: this.env() });
    spawnSync('tpm2_flushcontext', ['-s'], { cwd: this.dir, env: this.env() });
    if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  file(name: string): Uint8Array {
    return new Uint8Array(readFileSync(join(this.dir, name)));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** tpm2_pcrread YAML → bank → index → hex. */
  pcrRead(spec: string): Record<string, Record<number, string>> {
    const out = this.run('tpm2_pcrread', [spec]);
    const banks: Record<string, Record<number, string>> = {};
    let bank = '';
    for (const line of out.split('\n')) {
      const b = /^ {2}(\w+):\s*$/.exec(line);
      if (b) banks[(bank = b[1]!)] = {};
      const p = /^ {4}(\d+)\s*:\s*0x([0-9A-Fa-f]+)/.exec(line);
      if (p && bank) banks[bank]![Number(p[1])] = p[2]!.toLowerCase();
    }
    return banks;
  }

  stop(): void {
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
