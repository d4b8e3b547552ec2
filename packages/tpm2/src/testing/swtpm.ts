import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, cpSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinguardError } from '@joinguard/core';
import { freePortPair as consecutivePorts } from '@joinguard/core/testing';

/**
 * A software TPM for tests and the demo: swtpm manufactured by swtpm_setup with EK and platform certificates
 * from a private local CA (in the temp dir, so nothing under /var/lib or $HOME is touched), serving the TPM
 * and its control channel on two consecutive loopback ports, which is what tss2's swtpm TCTI expects.
 *
 * swtpm runs under a small sh supervisor that kills it as soon as our stdin pipe closes, so the emulator never
 * outlives this process, even when the test runner is killed with SIGKILL.
 */
export interface Swtpm {
  /** tss2 TCTI configuration string, e.g. "swtpm:host=127.0.0.1,port=40123". */
  readonly tcti: string;
  readonly port: number;
  readonly ctrlPort: number;
  /** Temp dir holding the TPM state, the local CA and the log; removed by stop(). */
  readonly dir: string;
  readonly stateDir: string;
  /** PEM of the local CA that issued the EK certificates (root, then intermediate issuer). */
  readonly caCertificatesPem: { root: string; issuer: string };
  readonly pid: number | undefined;
  /** Stops swtpm (and waits for it), then deletes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface SwtpmOptions {
  /** PCR banks to allocate; default sha1 and sha256 (what Azure's and most cloud vTPMs expose). */
  pcrBanks?: ('sha1' | 'sha256' | 'sha384' | 'sha512')[];
  /** Reuse a state manufactured earlier (copied, so the template stays untouched). */
  templateDir?: string;
}

const TOOLS = ['swtpm', 'swtpm_setup', 'swtpm_localca'] as const;

function toolError(code: string, message: string, details: Record<string, unknown>): JoinguardError {
  return new JoinguardError(code, message, details, { kind: 'internal' });
}

/** Which of the swtpm programs are missing from PATH (empty when swtpm can run). */
export function missingSwtpmTools(): string[] {
  return TOOLS.filter((t) => whichTool(t) === undefined);
}

function whichTool(tool: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : undefined;
}

/**
 * Manufactures a vTPM state in `dir` (a fresh directory): EK (RSA and ECC) with certificates, a platform
 * certificate, NVRAM locked, as a cloud vTPM comes. Takes about 1.5 s, so suites reuse one via templateDir.
 */
export function manufactureSwtpm(dir: string, opts: { pcrBanks?: string[] } = {}): { stateDir: string; caDir: string } {
  const missing = missingSwtpmTools();
  if (missing.length > 0) {
    throw toolError('TPM2_SWTPM_MISSING', `swtpm is not installed (missing ${missing.join(', ')}); install the Debian packages swtpm and swtpm-tools`, { missing });
  }
  const stateDir = join(dir, 'state');
  const caDir = join(dir, 'ca');
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(caDir, { recursive: true });
  const localca = join(dir, 'swtpm-localca.conf');
  const localcaOpts = join(dir, 'swtpm-localca.options');
  const setupConf = join(dir, 'swtpm_setup.conf');
  writeFileSync(
    localca,
    `statedir = ${caDir}\nsigningkey = ${caDir}/signkey.pem\nissuercert = ${caDir}/issuercert.pem\ncertserial = ${caDir}/certserial\n`,
  );
  writeFileSync(localcaOpts, '--platform-manufacturer joinguard\n--platform-version 2.1\n--platform-model swtpm\n');
  writeFileSync(setupConf, `create_certs_tool = ${whichTool('swtpm_localca')!}\ncreate_certs_tool_config = ${localca}\ncreate_certs_tool_options = ${localcaOpts}\n`);
  const banks = (opts.pcrBanks ?? ['sha1', 'sha256']).join(',');
  const r = spawnSync(
    'swtpm_setup',
    ['--tpm2', '--tpm-state', stateDir, '--config', setupConf, '--create-ek-cert', '--create-platform-cert', '--lock-nvram', '--pcr-banks', banks, '--overwrite'],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, XDG_CONFIG_HOME: dir } },
  );
  if (r.status !== 0) {
    throw toolError('TPM2_SWTPM_SETUP_FAILED', `swtpm_setup failed (status ${String(r.status)}): ${(r.stderr || r.stdout || String(r.error)).trim().slice(-2000)}`, {
      status: r.status,
    });
  }
  return { stateDir, caDir };
}

/** Two consecutive free loopback ports (swtpm's TCTI puts the control channel at port + 1). */
async function freePortPair(): Promise<number> {
  try {
    return await consecutivePorts();
  } catch (e) {
    throw toolError('TPM2_SWTPM_START_FAILED', (e as Error).message, {});
  }
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

// Kills swtpm when stdin (our pipe) reaches EOF: on stop(), or when this process dies in any way; then
// removes the temp dir (not when swtpm exits by itself, e.g. a port taken, since the state is reused).
const SUPERVISOR = `exec 3<&0
swtpm "$@" </dev/null 3<&- &
p=$!
( read _ <&3; : > "$JG_SWTPM_DIR/.stopping"; kill $p 2>/dev/null ) &
w=$!
wait $p
rc=$?
kill $w 2>/dev/null
[ -e "$JG_SWTPM_DIR/.stopping" ] && rm -rf "$JG_SWTPM_DIR"
exit $rc`;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) c.stdin?.destroy();
  });
}

/**
 * Starts a manufactured swtpm on free loopback ports and resolves once it accepts connections. Always call
 * stop() (e.g. in afterAll).
 */
export async function startSwtpm(opts: SwtpmOptions = {}): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'joinguard-swtpm-'));
  try {
    let stateDir: string;
    let caDir: string;
    if (opts.templateDir !== undefined) {
      stateDir = join(dir, 'state');
      caDir = join(dir, 'ca');
      cpSync(join(opts.templateDir, 'state'), stateDir, { recursive: true });
      cpSync(join(opts.templateDir, 'ca'), caDir, { recursive: true });
    } else {
      ({ stateDir, caDir } = manufactureSwtpm(dir, { pcrBanks: opts.pcrBanks }));
    }
    const caCertificatesPem = {
      root: readFileSync(join(caDir, 'swtpm-localca-rootca-cert.pem'), 'utf8'),
      issuer: readFileSync(join(caDir, 'issuercert.pem'), 'utf8'),
    };
    for (let attempt = 0; ; attempt++) {
      const port = await freePortPair();
      const started = await launch(dir, stateDir, port);
      if (started.ok) {
        const child = started.child;
        let stopped: Promise<void> | undefined;
        return {
          tcti: `swtpm:host=127.0.0.1,port=${port}`,
          port,
          ctrlPort: port + 1,
          dir,
          stateDir,
          caCertificatesPem,
          pid: child.pid,
          stop: () => (stopped ??= stopChild(child).then(() => rmSync(dir, { recursive: true, force: true }))),
        };
      }
      // Another process may have taken the ports between the probe and swtpm's bind: try new ones.
      if (attempt >= 4) {
        throw toolError('TPM2_SWTPM_START_FAILED', `swtpm did not start: ${started.reason}`, { port, log: readLog(dir) });
      }
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function readLog(dir: string): string {
  const f = join(dir, 'swtpm.log');
  return existsSync(f) ? readFileSync(f, 'utf8').slice(-2000) : '';
}

async function launch(dir: string, stateDir: string, port: number): Promise<{ ok: true; child: ChildProcess } | { ok: false; reason: string }> {
  installExitHook();
  const args = [
    'socket',
    '--tpm2',
    '--server',
    `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl',
    `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--tpmstate',
    `dir=${stateDir}`,
    '--flags',
    'not-need-init,startup-clear',
    '--log',
    `file=${join(dir, 'swtpm.log')},level=1`,
  ];
  const child = spawn('sh', ['-c', SUPERVISOR, 'sh', ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, JG_SWTPM_DIR: dir },
  });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
    running.delete(child);
  });
  // swtpm binds both ports within a few ms; allow seconds for a loaded CI machine.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) return { ok: false, reason: `swtpm exited at start: ${stderr.trim() || readLog(dir)}` };
    if ((await canConnect(port + 1)) && !exited) return { ok: true, child };
    await new Promise((r) => setTimeout(r, 20));
  }
  await stopChild(child);
  return { ok: false, reason: `swtpm did not listen on 127.0.0.1:${port + 1} within 10 s` };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    running.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}
