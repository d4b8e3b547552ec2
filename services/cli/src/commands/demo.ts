import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { compactDecrypt } from 'jose';
import YAML from 'yaml';
import { isJoinguardError } from '@joinguard/core';
import type { AttestResponse, KeyReleaseResponse } from '@joinguard/protocol';
import { verifyResult } from '@joinguard/protocol';
import { createSimCvm, teeKeyPair, type SimCvm, type SimTamper } from '@joinguard/simcvm';
import { loadConfig, startVerifier, type RunningVerifier } from '@joinguard/verifier';
import { EXIT_OK, EXIT_REJECTED, reportFailure, usage, writeJson, writeOut } from '../output.js';

/**
 * `joinguard demo`: the whole flow on the embedded defaults, with nothing to install but the npm packages.
 * Two simulated confidential VMs (SEV-SNP and TDX, each with a software vTPM and a measured boot) attest to a
 * verifier started in this process on loopback, get their disk keys, and are refused when they replay or boot
 * something else; then the auditor's own command re-verifies the store offline. The simulated hardware is
 * signed by test roots that only this demo's configuration (written beside the store) trusts.
 */

interface Step {
  step: string;
  ok: boolean;
  detail: string;
}

interface DemoOpts {
  json?: boolean;
  dir?: string;
}

const NODES = { snp: 'snp-worker-0', tdx: 'tdx-worker-0' } as const;

async function post<T>(url: string, body: unknown, bearer?: string): Promise<{ status: number; body: T & { code?: string; message?: string } }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as T & { code?: string; message?: string } };
}

/** Writes the demo's files (trust, pool policies, verifier config) and returns the config file. */
function writeSetup(dir: string, sims: Record<'snp' | 'tdx', SimCvm>): { configFile: string; policyFiles: string[]; trustArgs: string[] } {
  const snpTrust = sims.snp.writeTrust(join(dir, 'trust', 'snp'));
  const tdxTrust = sims.tdx.writeTrust(join(dir, 'trust', 'tdx'));
  mkdirSync(join(dir, 'policies'), { recursive: true });
  const policyFiles: string[] = [];
  const pools = (['snp', 'tdx'] as const).map((tee) => {
    const file = join(dir, 'policies', `${tee}-workers.yaml`);
    writeFileSync(file, YAML.stringify(sims[tee].goodPolicy()));
    policyFiles.push(file);
    return { name: `${tee}-workers`, nodes: `${tee}-worker-[0-9]+`, file };
  });
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    clusterId: 'joinguard-demo',
    dataDir: join(dir, 'data'),
    // Nodes outside both pools get the strict default policy, which accepts nothing.
    policy: { pools },
    trust: { snpTestRoots: [snpTrust.snpRootsPem!], tdxTestRoots: [tdxTrust.tdxRootPem!], tdxCollateralDir: tdxTrust.tdxCollateralDir! },
    logLevel: 'warn',
  };
  const configFile = join(dir, 'verifier.yaml');
  writeFileSync(configFile, `# Written by joinguard demo: trusts the simulated hardware's test roots, so never use it in production.\n${YAML.stringify(config)}`);
  const trustArgs = ['--snp-test-root', snpTrust.snpRootsPem!, '--tdx-test-root', tdxTrust.tdxRootPem!, '--tdx-collateral', tdxTrust.tdxCollateralDir!];
  return { configFile, policyFiles, trustArgs };
}

async function nodeFlow(v: RunningVerifier, sim: SimCvm, other: string, steps: Step[]): Promise<void> {
  const node = sim.nodeName;
  const say = (step: string, ok: boolean, detail: string) => steps.push({ step: `${node}: ${step}`, ok, detail });
  const jwks = (await (await fetch(`${v.url}/.well-known/jwks.json`)).json()) as Parameters<typeof verifyResult>[1];
  const tee = teeKeyPair();
  const runtimeData = { nodeName: node, machine: `${node}-machine`, purpose: 'join' as const, teeKey: tee.pub };
  const evidenceFor = async (tamper?: SimTamper) => {
    const { nonce } = (await (await fetch(`${v.url}/v1/challenge`)).json()) as { nonce: string };
    return sim.evidence({ nonce, runtimeData, ...(tamper ? { tamper } : {}) });
  };

  const evidence = await evidenceFor();
  const a = await post<AttestResponse>(`${v.url}/v1/attest`, evidence);
  const passed = a.status === 200 && a.body.appraisal?.verdict === 'pass';
  const checks = a.body.appraisal?.checks ?? [];
  say('attest', passed, passed ? `pass: ${checks.filter((c) => c.outcome === 'pass').length} checks passed, policy ${a.body.appraisal.policy.id}, record ${a.body.recordId}` : `HTTP ${a.status} ${a.body.code ?? a.body.appraisal?.verdict}`);
  if (!passed) return;

  try {
    const claims = await verifyResult(a.body.result, jwks, { now: new Date() });
    say('result', claims.sub === node && claims.verdict === 'pass', `JWT verified against /.well-known/jwks.json: sub ${claims.sub}, tee ${claims.tee}, TCB ${claims.tcb.status}, expires ${new Date(claims.exp * 1000).toISOString()}`);
  } catch (e) {
    say('result', false, `the result JWT does not verify: ${(e as Error).message}`);
  }

  const k = await post<KeyReleaseResponse>(`${v.url}/v1/keys/disk/${node}`, {}, a.body.result);
  if (k.status === 200) {
    const { plaintext } = await compactDecrypt(k.body.jwe, tee.priv);
    const again = await post<KeyReleaseResponse>(`${v.url}/v1/keys/disk/${node}`, {}, a.body.result);
    const same = again.status === 200 && Buffer.from((await compactDecrypt(again.body.jwe, tee.priv)).plaintext).equals(Buffer.from(plaintext));
    const fp = createHash('sha256').update(plaintext).digest('hex').slice(0, 16);
    say('disk key', plaintext.length === 32 && same, `a JWE only the TEE key opens: ${plaintext.length}-byte key, SHA-256 ${fp}…, the same on a second request (derived, never stored)`);
  } else {
    say('disk key', false, `HTTP ${k.status} ${k.body.code}`);
  }

  const replay = await post<AttestResponse>(`${v.url}/v1/attest`, evidence);
  say('replay', replay.status !== 200 && replay.body.code === 'PROTOCOL_NONCE_REPLAYED', `the same evidence again: HTTP ${replay.status} ${replay.body.code}`);

  const theft = await post<KeyReleaseResponse>(`${v.url}/v1/keys/disk/${other}`, {}, a.body.result);
  say("another node's key", theft.status !== 200 && theft.body.code === 'KEYS_NODE_MISMATCH', `this node's result for ${other}'s key: HTTP ${theft.status} ${theft.body.code}`);

  const bad = await post<AttestResponse>(`${v.url}/v1/attest`, await evidenceFor({ eventLog: 'bootAppDigest' }));
  const failed = bad.body.appraisal?.checks.find((c) => c.outcome === 'fail');
  say('altered boot', bad.status === 200 && bad.body.appraisal?.verdict === 'fail' && failed !== undefined, `an event log that does not match what was measured: verdict ${bad.body.appraisal?.verdict}, first failed check ${failed?.name}${failed?.code ? ` [${failed.code}]` : ''}`);
  if (bad.status === 200) {
    const refused = await post<KeyReleaseResponse>(`${v.url}/v1/keys/disk/${node}`, {}, bad.body.result);
    say('key after a failure', refused.status !== 200 && refused.body.code === 'KEYS_RESULT_FAILED', `the failed result asks for the disk key: HTTP ${refused.status} ${refused.body.code}`);
  }
}

/** Runs `joinguard audit verify` on the store as an auditor would, in a process of its own. */
interface AuditOut {
  verified?: boolean;
  chains?: { log: string; count: number }[];
  reappraisals?: { same?: boolean }[];
  error?: { code?: string; message?: string };
}

function auditVerify(storePath: string, keysDir: string, policyFiles: string[], trustArgs: string[]): { args: string[]; code: number; out: AuditOut | undefined; stderr: string } {
  const args = ['audit', 'verify', '--store', storePath, '--keys', keysDir, '--reappraise', '--policy', ...policyFiles, ...trustArgs, '--json'];
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, ...args], { encoding: 'utf8' });
  let out;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    out = undefined;
  }
  return { args, code: r.status ?? -1, out, stderr: r.stderr };
}

export async function runDemo(opts: DemoOpts): Promise<{ ok: boolean; dir: string; steps: Step[]; audit: string }> {
  let dir: string;
  if (opts.dir) {
    dir = resolve(opts.dir);
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw usage(`--dir ${opts.dir} is not a directory`, { dir: opts.dir });
    // A store from an earlier run holds evidence signed by that run's test roots, which this run does not trust.
    if (existsSync(dir) && readdirSync(dir).length > 0) throw usage(`--dir ${opts.dir} is not empty: give a new or empty directory`, { dir: opts.dir });
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw usage(`--dir ${opts.dir} cannot be made: ${(e as Error).message}`, { dir: opts.dir });
    }
  } else dir = mkdtempSync(join(tmpdir(), 'joinguard-demo-'));
  const steps: Step[] = [];
  const sims = {
    snp: await createSimCvm({ tee: 'snp', nodeName: NODES.snp, vtpm: 'software' }),
    tdx: await createSimCvm({ tee: 'tdx', nodeName: NODES.tdx, vtpm: 'software' }),
  };
  let v: RunningVerifier | undefined;
  let auditLine = '';
  try {
    const setup = writeSetup(dir, sims);
    const config = loadConfig({ file: setup.configFile, env: {} });
    if (config.store.kind !== 'sqlite') throw usage('the demo runs on the embedded SQLite store');
    v = await startVerifier(config);
    steps.push({ step: 'verifier', ok: true, detail: `listening on ${v.url}; store ${config.store.path}; config ${setup.configFile}` });
    await nodeFlow(v, sims.snp, NODES.tdx, steps);
    await nodeFlow(v, sims.tdx, NODES.snp, steps);
    await v.close();
    v = undefined;

    const audit = auditVerify(config.store.path, config.signing.keysDir, setup.policyFiles, setup.trustArgs);
    auditLine = `joinguard ${audit.args.join(' ')}`;
    const chains = audit.out?.chains ?? [];
    const reappraised = audit.out?.reappraisals ?? [];
    steps.push({
      step: 'audit, offline',
      ok: audit.code === 0 && audit.out?.verified === true && reappraised.length > 0 && reappraised.every((x) => x.same !== false),
      detail:
        audit.out === undefined
          ? `audit verify gave no JSON (exit ${audit.code}): ${audit.stderr.trim()}`
          : audit.out.verified !== true
            ? `audit verify refused the store (exit ${audit.code}): ${audit.out.error?.code}: ${audit.out.error?.message}`
            : `signatures and hash chains intact (records per log: ${chains.map((c) => `${c.log} ${c.count}`).join(', ')}); ${reappraised.length} appraisals re-run from the stored evidence, every verdict reproduced`,
    });
  } catch (e) {
    // Whatever stopped the flow is a step that failed: the files stay, and the report says where they are.
    steps.push({ step: 'demo', ok: false, detail: `stopped: ${isJoinguardError(e) ? `${e.code}: ` : ''}${(e as Error).message}` });
  } finally {
    await v?.close();
    await sims.snp.close();
    await sims.tdx.close();
  }
  const ok = steps.every((s) => s.ok);
  if (!opts.dir && ok) rmSync(dir, { recursive: true, force: true });
  return { ok, dir, steps, audit: auditLine };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole flow on simulated SEV-SNP and TDX nodes: attest, disk keys, refusals, offline audit (nothing to configure)')
    .option('--dir <dir>', 'keep the demo\'s verifier config, trust files, policies and store here (default: a temporary directory, removed when every step passed)')
    .option('--json', 'print JSON')
    .action(async (opts: DemoOpts) => {
      try {
        const r = await runDemo(opts);
        if (opts.json) writeJson({ ok: r.ok, dir: r.dir, steps: r.steps, audit: r.audit });
        else {
          const lines = r.steps.map((s) => `${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}`);
          lines.push(r.ok ? 'every step behaved as it should' : `some steps did not behave as they should; the files are kept in ${r.dir}`);
          if (opts.dir) lines.push(`the auditor's command, again: ${r.audit}`);
          writeOut(lines.join('\n') + '\n');
        }
        process.exitCode = r.ok ? EXIT_OK : EXIT_REJECTED;
      } catch (e) {
        process.exitCode = reportFailure(opts, e);
      }
    });
}
