import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_API_VERSION, POLICY_KIND, type Policy } from '@joinguard/policy';
import { toB64url, type AttestResponse, type Evidence } from '@joinguard/protocol';
import { defaultConfig } from '../src/config.js';
import { startVerifier, type RunningVerifier } from '../src/run.js';
import { AZURE_VECTORS_TIME, CHALLENGE, ZERO_USER_DATA, azureEvidence } from './support/azure.js';

/*
 * The real Azure SNP and TDX vTPM bundles through POST /v1/attest. They are bound to their publisher's
 * challenge ("challenge", 9 bytes, the quote's extraData; user-data zero), which is too short to be a nonce
 * of ours (at least 16 bytes), so each request carries a fresh nonce that stands for it: the verifier is
 * started with the test-only hooks (an argument of startVerifier, not a configuration setting) that accept
 * exactly those nonces and bind each to the challenge it stands for. Everything else is the production path:
 * schema at the edge, replay set, appraisal, record, signed result.
 */
const vectorNonces = new Map<string, Uint8Array>();
let v: RunningVerifier;
let strict: RunningVerifier;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'jg-azure-'));
  const policy: Policy = {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    name: 'azure-vectors',
    tee: { allowed: ['azure-snp-vtpm', 'azure-tdx-vtpm'] },
    snp: { guestPolicy: { allowDebug: false, allowMigrateMa: false, allowSmt: true } },
    tdx: { allowedTcbStatuses: ['UpToDate'], allowDebug: false },
    tpm: { requiredBanks: ['sha256'] },
    // The bundles carry no event log (a header-only one is sent), so Secure Boot is not measured; the
    // default would require it.
    boot: { requireSecureBoot: false },
  };
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, YAML.stringify(policy));
  const config = { ...defaultConfig(join(dir, 'data')), listen: { host: '127.0.0.1', port: 0 }, policy: { file: policyFile }, logLevel: 'silent' as const };
  const now = () => AZURE_VECTORS_TIME;
  v = await startVerifier(config, {
    now,
    testHooks: {
      challengeOverride: (nonce) => vectorNonces.has(nonce),
      expectedBinding: (e: Evidence) => {
        const challenge = vectorNonces.get(e.nonce);
        return challenge ? { azureUserData: ZERO_USER_DATA, tpmExtraData: challenge, tdxWithoutCollateral: e.tee === 'azure-tdx-vtpm' } : undefined;
      },
    },
  });
  strict = await startVerifier({ ...config, dataDir: join(dir, 'strict'), store: { kind: 'sqlite', path: join(dir, 'strict.sqlite') } }, { now });
});
afterAll(async () => {
  await v?.close();
  await strict?.close();
});

async function post(server: RunningVerifier, e: Evidence): Promise<{ status: number; body: AttestResponse & { code?: string } }> {
  const r = await fetch(`${server.url}/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(e) });
  return { status: r.status, body: (await r.json()) as AttestResponse & { code?: string } };
}

/** A fresh nonce standing for `challenge` (by default the one the bundles were made for). */
function vectorNonce(challenge: Uint8Array = CHALLENGE): string {
  const n = toB64url(new Uint8Array(randomBytes(32)));
  vectorNonces.set(n, challenge);
  return n;
}

const status = (r: AttestResponse, name: string) => r.appraisal.checks.find((c) => c.name === name)?.outcome;

describe('published Azure vTPM bundles over HTTP', () => {
  it('azure-snp-vtpm: hardware, bindings and vTPM quote pass; the appraisal is recorded and a result signed', async () => {
    const r = await post(v, azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', undefined, vectorNonce()));
    expect(r.status).toBe(200);
    for (const name of ['evidence.decode', 'azure-snp-vtpm.hardware', 'binding.azure.userData', 'binding.azure.varDataDigest', 'tpm.quote', 'binding.tpmExtraData', 'teeKey']) {
      expect(status(r.body, name), name).toBe('pass');
    }
    // Not measured, and not required by this policy (see above); the (empty) log's events are verified.
    expect(status(r.body, 'policy.boot.secureBoot')).toBe('skip');
    expect(status(r.body, 'policy.boot.events.verified')).toBe('pass');
    expect(r.body.appraisal.verdict).toBe('pass');
    expect((await v.store.get(r.body.recordId))?.record.verdict).toBe('pass');
  });

  it('azure-tdx-vtpm: TD quote, TDREPORT match, bindings and vTPM quote pass (no published TCB collateral for its FMSPC)', async () => {
    const r = await post(v, azureEvidence('az_tdx_vtpm', 'azure-tdx-vtpm', undefined, vectorNonce()));
    expect(r.status).toBe(200);
    for (const name of ['azure-tdx-vtpm.hardware', 'binding.azure.userData', 'binding.azure.varDataDigest', 'tpm.quote', 'binding.tpmExtraData']) {
      expect(status(r.body, name), name).toBe('pass');
    }
    expect(r.body.appraisal.checks.filter((c) => c.outcome === 'fail').map((c) => c.name)).toEqual(['policy.tdx.tcbStatus']);
  });

  it('the derived HCL report (runtime data changed) is rejected at the binding', async () => {
    const r = await post(v, azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', 'azure/derived/az_snp_hcl_report_vardata_0x6e0_plus1.bin', vectorNonce()));
    expect(r.status).toBe(200);
    expect(r.body.appraisal.verdict).toBe('fail');
    expect(r.body.appraisal.checks.find((c) => c.outcome === 'fail')!.name).toMatch(/^binding\.azure\./);
  });

  it('a bundle under a nonce that stands for another challenge fails the quote binding', async () => {
    for (const [dir, tee] of [
      ['az_snp_vtpm_milan_v2', 'azure-snp-vtpm'],
      ['az_tdx_vtpm', 'azure-tdx-vtpm'],
    ] as const) {
      const r = await post(v, azureEvidence(dir, tee, undefined, vectorNonce(Buffer.from('challengf'))));
      expect(r.status).toBe(200);
      expect(r.body.appraisal.verdict).toBe('fail');
      expect(r.body.appraisal.checks.find((c) => c.outcome === 'fail')).toMatchObject({ name: 'binding.tpmExtraData', code: 'APPRAISE_TPM_EXTRA_DATA_MISMATCH' });
    }
  });

  it('a vector nonce is still single-use', async () => {
    const nonce = vectorNonce();
    expect((await post(v, azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', undefined, nonce))).status).toBe(200);
    const again = await post(v, azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', undefined, nonce));
    expect(again.status).toBe(401);
    expect(again.body.code).toBe('PROTOCOL_NONCE_REPLAYED');
  });

  it('a verifier started without the hooks refuses the same bundle (its nonce is not ours)', async () => {
    const r = await post(strict, azureEvidence('az_snp_vtpm_milan_v2', 'azure-snp-vtpm', undefined, vectorNonce()));
    expect(r.status).toBe(401);
    expect(r.body.code).toMatch(/^PROTOCOL_NONCE_(MALFORMED|FORGED)$/);
  });
});
