/**
 * Intel's TCB statuses (TCB info and QE identity, TDX and SGX), best to worst. The TDX verifier ranks a quote's
 * parts by this order; policies name the statuses they admit from it.
 */
export const INTEL_TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type IntelTcbStatus = (typeof INTEL_TCB_STATUSES)[number];
