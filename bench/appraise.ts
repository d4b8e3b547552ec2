// Appraisals per second, in process: simulated SNP (and TDX) CVMs with the software vTPM and a 22-event
// TCG log, fresh nonce per bundle, the whole engine (decode, hardware, bindings, quote, replay, policy).
// Run: npx tsx bench/appraise.ts [count]
import { policyDigest } from '@joinguard/policy';
import type { Evidence } from '@joinguard/protocol';
import { createSimCvm, type SimCvm } from '@joinguard/simcvm';
import { ChainCache } from '@joinguard/snp';
import { PckChainCache } from '@joinguard/tdx';
import { appraiseEvidence, defaultTrust, type AppraisalContext } from '../services/verifier/src/appraise/index.js';

const count = Number(process.argv[2] ?? 500);

function ctxFor(sim: SimCvm, cached: boolean): AppraisalContext {
  const policy = sim.goodPolicy();
  const trust = defaultTrust({ snpTestRootsPem: sim.trust.snpRootsPem, tdxTestRootsPem: sim.trust.tdxRootsPem });
  if (sim.trust.tdxCollateral) trust.tdxCollateral = sim.trust.tdxCollateral;
  return {
    now: new Date(),
    policy,
    policyRef: { id: policy.name, digest: policyDigest(policy) },
    trust,
    ...(cached ? { caches: { snpChains: new ChainCache(), tdxPck: new PckChainCache() } } : {}),
  };
}

async function run(label: string, sim: SimCvm, cached: boolean): Promise<void> {
  const bundles: Evidence[] = [];
  for (let i = 0; i < count; i++) bundles.push(await sim.evidence());
  const ctx = ctxFor(sim, cached);
  // Warm-up: JIT, the policy schema, the collateral verification (cached per bundle object).
  for (let i = 0; i < Math.min(20, count); i++) await appraiseEvidence(bundles[i]!, ctx);
  const t0 = process.hrtime.bigint();
  let pass = 0;
  for (const b of bundles) if ((await appraiseEvidence(b, ctx)).appraisal.verdict === 'pass') pass++;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (pass !== count) throw new Error(`${label}: only ${pass}/${count} bundles passed`);
  console.log(`${label.padEnd(44)} ${count} appraisals in ${ms.toFixed(0)} ms: ${((count * 1000) / ms).toFixed(0)} appraisals/s, ${(ms / count).toFixed(2)} ms each`);
}

const snp = await createSimCvm({ tee: 'snp', vtpm: 'software', nodeName: 'bench-snp' });
const tdx = await createSimCvm({ tee: 'tdx', vtpm: 'software', nodeName: 'bench-tdx' });
console.log(`node ${process.version}, ${count} bundles per run, evidence ${JSON.stringify(await snp.evidence()).length} bytes (SNP)`);
await run('SNP + software vTPM + event log, caches', snp, true);
await run('SNP + software vTPM + event log, no caches', snp, false);
await run('TDX + software vTPM + event log, caches', tdx, true);
await run('TDX + software vTPM + event log, no caches', tdx, false);
await snp.close();
await tdx.close();
