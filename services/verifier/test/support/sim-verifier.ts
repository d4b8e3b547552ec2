// A verifier on loopback configured to trust one simulated CVM (its test roots and good policy), with an
// auditor and an admin bearer token, and helpers to challenge, attest, release keys and read records over HTTP.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Policy } from '@joinguard/policy';
import { createSimCvm, type SimCvm, type SimTamper } from '@joinguard/simcvm';
import type { AttestResponse, ChallengeResponse, KeyReleaseResponse, RuntimeData, SignedRecord } from '@joinguard/protocol';
import { defaultConfig, type VerifierConfig } from '../../src/config.js';
import { hashToken } from '../../src/auth.js';
import { startVerifier, type RunningVerifier } from '../../src/run.js';

export const AUDITOR_TOKEN = 'sim-auditor-token-0123456789abcdef';
export const ADMIN_TOKEN = 'sim-admin-token-0123456789abcdef';

export interface SimHarness {
  dir: string;
  sim: SimCvm;
  config: VerifierConfig;
  /** starts the verifier of `config` (done by simHarness unless `start: false`) */
  v: RunningVerifier;
  close(): Promise<void>;
}

/** Writes trust files, policy and tokens for a fresh simulated CVM; `edit` may change the configuration. */
export async function simHarness(
  opts: { tee?: 'snp' | 'tdx'; nodeName?: string; edit?: (c: VerifierConfig, dir: string) => VerifierConfig; start?: boolean; now?: () => Date; pinAk?: boolean } = {},
): Promise<SimHarness> {
  const tee = opts.tee ?? 'snp';
  const dir = mkdtempSync(join(tmpdir(), `jg-sim-${tee}-`));
  const sim = await createSimCvm({ tee, nodeName: opts.nodeName ?? `worker-${tee}-0`, vtpm: 'software' });
  const files = sim.writeTrust(join(dir, 'trust'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify(opts.pinAk ? pinningPolicy(sim) : sim.goodPolicy()));
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(
    tokensFile,
    `tokens:\n  - name: audit\n    sha256: ${hashToken(AUDITOR_TOKEN)}\n    roles: [auditor]\n  - name: ops\n    sha256: ${hashToken(ADMIN_TOKEN)}\n    roles: [admin]\n`,
  );
  const base = defaultConfig(join(dir, 'data'));
  let config: VerifierConfig = {
    ...base,
    listen: { host: '127.0.0.1', port: 0 },
    clusterId: 'sim-cluster',
    policy: { file: policyFile },
    trust: {
      snpTestRoots: files.snpRootsPem ? [files.snpRootsPem] : [],
      tdxTestRoots: files.tdxRootPem ? [files.tdxRootPem] : [],
      ...(files.tdxCollateralDir ? { tdxCollateralDir: files.tdxCollateralDir } : {}),
    },
    auth: { tokensFile, mtlsRoles: {} },
    logLevel: 'silent',
  };
  if (opts.edit) config = opts.edit(config, dir);
  const h: SimHarness = {
    dir,
    sim,
    config,
    v: undefined as unknown as RunningVerifier,
    async close() {
      await h.v?.close();
      await sim.close();
    },
  };
  if (opts.start !== false) h.v = await startVerifier(config, opts.now ? { now: opts.now } : {});
  return h;
}

/** The simulated CVM's good policy with `tpm.pinAk`: its nodes are pinned to their first AK. */
export function pinningPolicy(sim: SimCvm): Policy {
  const p = sim.goodPolicy();
  return { ...p, name: `${p.name}-pinned`, tpm: { ...p.tpm, pinAk: true } };
}

export type Fetch = (path: string, init?: RequestInit) => Promise<Response>;

export function fetcher(base: string): Fetch {
  return (path, init) => fetch(base + path, init);
}

export async function challenge(f: Fetch): Promise<ChallengeResponse> {
  const r = await f('/v1/challenge');
  if (r.status !== 200) throw new Error(`challenge: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as ChallengeResponse;
}

/** Challenge, simulated evidence for it, POST /v1/attest. */
export async function attest(
  f: Fetch,
  sim: SimCvm,
  opts: { runtimeData?: Partial<RuntimeData>; tamper?: SimTamper } = {},
): Promise<{ status: number; body: AttestResponse & { code?: string } }> {
  const { nonce } = await challenge(f);
  const evidence = await sim.evidence({ nonce, ...(opts.runtimeData ? { runtimeData: opts.runtimeData } : {}), ...(opts.tamper ? { tamper: opts.tamper } : {}) });
  const r = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  return { status: r.status, body: (await r.json()) as AttestResponse & { code?: string } };
}

export async function releaseKey(f: Fetch, name: string, result: string | undefined, body: Record<string, unknown> = {}) {
  const r = await f(`/v1/keys/disk/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(result ? { authorization: `Bearer ${result}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as KeyReleaseResponse & { code?: string; message?: string; details?: unknown } };
}

export async function records(f: Fetch, query: string, token = AUDITOR_TOKEN): Promise<SignedRecord[]> {
  const r = await f(`/v1/records?${query}`, { headers: { authorization: `Bearer ${token}` } });
  if (r.status !== 200) throw new Error(`records: HTTP ${r.status} ${await r.text()}`);
  return ((await r.json()) as { records: SignedRecord[] }).records;
}
