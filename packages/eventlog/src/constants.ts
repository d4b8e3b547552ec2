/**
 * Identifiers from the TCG PC Client Platform Firmware Profile (PFP) specification, section 10.4.1
 * (event types) and the TCG Algorithm Registry (hash algorithm ids used in TPML_DIGEST_VALUES).
 */
export const EventType = {
  EV_PREBOOT_CERT: 0x0,
  EV_POST_CODE: 0x1,
  EV_UNUSED: 0x2,
  EV_NO_ACTION: 0x3,
  EV_SEPARATOR: 0x4,
  EV_ACTION: 0x5,
  EV_EVENT_TAG: 0x6,
  EV_S_CRTM_CONTENTS: 0x7,
  EV_S_CRTM_VERSION: 0x8,
  EV_CPU_MICROCODE: 0x9,
  EV_PLATFORM_CONFIG_FLAGS: 0xa,
  EV_TABLE_OF_DEVICES: 0xb,
  EV_COMPACT_HASH: 0xc,
  EV_IPL: 0xd,
  EV_IPL_PARTITION_DATA: 0xe,
  EV_NONHOST_CODE: 0xf,
  EV_NONHOST_CONFIG: 0x10,
  EV_NONHOST_INFO: 0x11,
  EV_OMIT_BOOT_DEVICE_EVENTS: 0x12,
  EV_POST_CODE2: 0x13,
  EV_EFI_EVENT_BASE: 0x80000000,
  EV_EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EV_EFI_VARIABLE_BOOT: 0x80000002,
  EV_EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EV_EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EV_EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EV_EFI_GPT_EVENT: 0x80000006,
  EV_EFI_ACTION: 0x80000007,
  EV_EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EV_EFI_HANDOFF_TABLES: 0x80000009,
  EV_EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EV_EFI_HANDOFF_TABLES2: 0x8000000b,
  EV_EFI_VARIABLE_BOOT2: 0x8000000c,
  EV_EFI_GPT_EVENT2: 0x8000000d,
  EV_EFI_HCRTM_EVENT: 0x80000010,
  EV_EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EV_EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EV_EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const eventTypeNames = new Map<number, string>(Object.entries(EventType).map(([k, v]) => [v, k]));

export function eventTypeName(t: number): string {
  return eventTypeNames.get(t) ?? `UNKNOWN_0x${t.toString(16).padStart(8, '0')}`;
}

/** TPM_ALG_ID → bank name and digest size, for the algorithms a replay can compute. */
export const HashAlg: Record<number, { name: string; size: number; node: string }> = {
  0x0004: { name: 'sha1', size: 20, node: 'sha1' },
  0x000b: { name: 'sha256', size: 32, node: 'sha256' },
  0x000c: { name: 'sha384', size: 48, node: 'sha384' },
  0x000d: { name: 'sha512', size: 64, node: 'sha512' },
  0x0012: { name: 'sm3_256', size: 32, node: 'sm3' },
  0x0027: { name: 'sha3_256', size: 32, node: 'sha3-256' },
  0x0028: { name: 'sha3_384', size: 48, node: 'sha3-384' },
  0x0029: { name: 'sha3_512', size: 64, node: 'sha3-512' },
};

export function algName(id: number): string {
  return HashAlg[id]?.name ?? `alg_0x${id.toString(16).padStart(4, '0')}`;
}

/** Limits that keep hostile logs from costing unbounded time or memory. */
export const LIMITS = {
  /** Real firmware logs hold hundreds of events; Windows logs a few thousand. */
  maxEvents: 65536,
  /** The largest real events (dbx, GPT) are tens of KiB. */
  maxEventSize: 1 << 20,
  /** The Spec ID event lists each bank the firmware extends; the registry has fewer than 16 hashes. */
  maxAlgorithms: 16,
  maxDigestSize: 64,
  /** Entries inside one decoded structure (signature lists, GPT partitions, device path nodes, tables). */
  maxEntries: 4096,
} as const;

/** EFI GUIDs a policy looks for, in their canonical text form. */
export const Guid = {
  EFI_GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  EFI_IMAGE_SECURITY_DATABASE: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  SHIM_LOCK: '605dab50-e046-4300-abb6-3dd810dd8b23',
  EFI_CERT_X509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  EFI_CERT_SHA256: 'c1c41626-504c-4092-aca9-41f936934328',
  EFI_CERT_SHA1: '826ca512-cf10-4ac9-b187-be01496631bd',
  EFI_CERT_SHA384: 'ff3e5307-9fd0-48c9-85f1-8ad56c701e01',
  EFI_CERT_SHA512: '093e0fae-a6c4-4f50-9f1b-d41e2b89c19a',
  EFI_CERT_X509_SHA256: '3bd2a492-96c0-4079-b420-fcf98ef103ed',
} as const;
