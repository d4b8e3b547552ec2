import { TEE_KINDS } from './claims.js';
import { POLICY_API_VERSION, POLICY_KIND, type Policy } from './types.js';

/**
 * The strict default: any of the four TEE kinds, no debug guest or TD, no SNP migration agent, TDX TCB
 * UpToDate only, a SHA-256 PCR bank quoted, Secure Boot on and every decoded boot event matching its
 * digest. It carries no reference values (measurements are per deployment; `joinguard policy learn`
 * proposes them) and no SNP minimum TCB (the VCEK already binds the reportedTcb, and the current
 * minimum depends on the product and AMD's latest bulletins).
 */
export function defaultPolicy(): Policy {
  return {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    name: 'default-strict',
    description: 'joinguard strict default: no debug, TDX UpToDate, Secure Boot on',
    tee: { allowed: [...TEE_KINDS] },
    snp: { guestPolicy: { allowDebug: false, allowMigrateMa: false, allowSmt: true } },
    tdx: { allowedTcbStatuses: ['UpToDate'], allowDebug: false },
    tpm: { requiredBanks: ['sha256'] },
    boot: { requireSecureBoot: true, requireVerifiedEvents: true },
  };
}
