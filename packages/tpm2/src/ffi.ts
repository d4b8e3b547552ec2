import { createRequire } from 'node:module';
import { JoinguardError } from '@joinguard/core';
import type * as Koffi from 'koffi';

/**
 * The tss2 entry points joinguard calls. Every structure crosses the FFI boundary as an untyped pointer:
 * inputs are built by Tss2_MU_*_Unmarshal from TPM wire bytes we marshal ourselves, outputs are turned back
 * into wire bytes with Tss2_MU_*_Marshal. koffi therefore never mirrors a C layout (the TPMU unions are
 * deep and differ between tss2 releases), and the only thing we must know of a C struct is an upper bound of
 * its size (C_SIZE below).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
type Fn = (...args: any[]) => any;

export interface Tss2 {
  koffi: typeof Koffi;
  Tss2_TctiLdr_Initialize: Fn;
  Tss2_TctiLdr_Finalize: Fn;
  Esys_Initialize: Fn;
  Esys_Finalize: Fn;
  Esys_Free: Fn;
  Esys_GetCapability: Fn;
  Esys_PCR_Read: Fn;
  Esys_PCR_Extend: Fn;
  Esys_CreatePrimary: Fn;
  Esys_ReadPublic: Fn;
  Esys_EvictControl: Fn;
  Esys_Quote: Fn;
  Esys_FlushContext: Fn;
  Esys_TR_FromTPMPublic: Fn;
  Esys_TR_Close: Fn;
  Esys_TR_GetName: Fn;
  Esys_NV_ReadPublic: Fn;
  Esys_NV_Read: Fn;
  Esys_NV_DefineSpace: Fn;
  Esys_NV_Write: Fn;
  Esys_NV_UndefineSpace: Fn;
  Tss2_RC_Decode: Fn;
  /** Tss2_MU_<type>_Unmarshal(buffer, size, &offset, dest) by type name. */
  unmarshal: Record<MuType, Fn>;
  /** Tss2_MU_<type>_Marshal(src, buffer, size, &offset) by type name. */
  marshal: Record<MuType, Fn>;
}

export const MU_TYPES = [
  'TPM2B_PUBLIC',
  'TPM2B_SENSITIVE_CREATE',
  'TPM2B_DATA',
  'TPML_PCR_SELECTION',
  'TPMT_SIG_SCHEME',
  'TPM2B_NV_PUBLIC',
  'TPM2B_AUTH',
  'TPM2B_MAX_NV_BUFFER',
  'TPML_DIGEST_VALUES',
  'TPM2B_ATTEST',
  'TPMT_SIGNATURE',
  'TPMS_CAPABILITY_DATA',
  'TPML_DIGEST',
  'TPM2B_NAME',
] as const;
export type MuType = (typeof MU_TYPES)[number];

/**
 * sizeof() of each C structure in tss2 3.x/4.x on LP64 (measured with gcc against /usr/include/tss2), doubled:
 * the structures are fixed-size arrays sized by TPM2_MAX_* constants, and the margin keeps a build with larger
 * limits safe, since Unmarshal writes into a buffer we allocate.
 */
export const C_SIZE: Record<MuType, number> = {
  TPM2B_PUBLIC: 616 * 2,
  TPM2B_SENSITIVE_CREATE: 326 * 2,
  TPM2B_DATA: 66 * 2,
  TPML_PCR_SELECTION: 132 * 2,
  TPMT_SIG_SCHEME: 6 * 2,
  TPM2B_NV_PUBLIC: 84 * 2,
  TPM2B_AUTH: 66 * 2,
  TPM2B_MAX_NV_BUFFER: 2050 * 2,
  TPML_DIGEST_VALUES: 1060 * 2,
  TPM2B_ATTEST: 2306 * 2,
  TPMT_SIGNATURE: 518 * 2,
  TPMS_CAPABILITY_DATA: 1032 * 2,
  TPML_DIGEST: 532 * 2,
  TPM2B_NAME: 70 * 2,
};

/** Runtime libraries, by soname first (present without the -dev package), then the development link. */
const LIBRARIES = {
  esys: { names: ['libtss2-esys.so.0', 'libtss2-esys.so'], debian: 'libtss2-esys-3.0.2-0' },
  tctildr: { names: ['libtss2-tctildr.so.0', 'libtss2-tctildr.so'], debian: 'libtss2-tctildr0' },
  mu: { names: ['libtss2-mu.so.0', 'libtss2-mu.so'], debian: 'libtss2-mu0' },
  rc: { names: ['libtss2-rc.so.0', 'libtss2-rc.so'], debian: 'libtss2-rc0' },
} as const;

const INSTALL_HINT =
  'install the tpm2-tss runtime libraries: on Debian/Ubuntu `apt-get install libtss2-esys-3.0.2-0 libtss2-tctildr0 libtss2-mu0 libtss2-rc0 libtss2-tcti-device0 libtss2-tcti-swtpm0` (or simply libtss2-dev)';

function missing(what: string, cause: unknown, details: Record<string, unknown>): JoinguardError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new JoinguardError('TPM2_LIBRARY_MISSING', `${what} cannot be loaded (${reason}); ${INSTALL_HINT}`, details, {
    kind: 'internal',
    cause,
  });
}

export function loadKoffi(): typeof Koffi {
  try {
    // Loaded lazily so that importing this package (e.g. into a bundled CLI) never needs the native module.
    const req = createRequire(import.meta.url);
    return req('koffi') as typeof Koffi;
  } catch (e) {
    throw missing('the koffi FFI module', e, { module: 'koffi' });
  }
}

/** dlopen()s the first loadable of `spec.names`; TPM2_LIBRARY_MISSING naming the Debian package otherwise. */
export function loadLibrary(koffi: typeof Koffi, spec: { readonly names: readonly string[]; readonly debian: string }): Koffi.LibraryHandle {
  const errors: string[] = [];
  for (const name of spec.names) {
    try {
      return koffi.load(name);
    } catch (e) {
      errors.push(e instanceof Error ? e.message : String(e));
    }
  }
  throw missing(`the TPM library ${spec.names[0]}`, errors[0], { library: spec.names[0], debianPackage: spec.debian, errors });
}

let cached: Tss2 | undefined;

/** Loads the tss2 libraries once per process; throws TPM2_LIBRARY_MISSING when any of them is absent. */
export function loadTss2(): Tss2 {
  if (cached) return cached;
  // tss2 logs every TPM error to stderr; ours carry the decoded code already, so keep the attester's output
  // clean unless the operator asked for tss2 logging (read by tss2 at its first log call).
  process.env.TSS2_LOG ??= 'all+none';
  const koffi = loadKoffi();
  const esys = loadLibrary(koffi, LIBRARIES.esys);
  const tctildr = loadLibrary(koffi, LIBRARIES.tctildr);
  const mu = loadLibrary(koffi, LIBRARIES.mu);
  const rc = loadLibrary(koffi, LIBRARIES.rc);
  const bind = (lib: Koffi.LibraryHandle, proto: string): Fn => {
    try {
      return lib.func(proto);
    } catch (e) {
      throw missing(`the tss2 function in "${proto}"`, e, { prototype: proto });
    }
  };
  // ESYS_TR, TPM2_HANDLE, TSS2_RC and TPMI_YES_NO are uint32_t/uint8_t typedefs.
  const S = 'uint32_t s1, uint32_t s2, uint32_t s3';
  const unmarshal = {} as Record<MuType, Fn>;
  const marshal = {} as Record<MuType, Fn>;
  for (const t of MU_TYPES) {
    unmarshal[t] = bind(mu, `uint32_t Tss2_MU_${t}_Unmarshal(const uint8_t *buffer, size_t size, _Inout_ size_t *offset, void *dest)`);
    marshal[t] = bind(mu, `uint32_t Tss2_MU_${t}_Marshal(const void *src, uint8_t *buffer, size_t size, _Inout_ size_t *offset)`);
  }
  cached = {
    koffi,
    Tss2_TctiLdr_Initialize: bind(tctildr, 'uint32_t Tss2_TctiLdr_Initialize(const char *conf, _Out_ void **tcti)'),
    Tss2_TctiLdr_Finalize: bind(tctildr, 'void Tss2_TctiLdr_Finalize(_Inout_ void **tcti)'),
    Esys_Initialize: bind(esys, 'uint32_t Esys_Initialize(_Out_ void **ctx, void *tcti, void *abiVersion)'),
    Esys_Finalize: bind(esys, 'void Esys_Finalize(_Inout_ void **ctx)'),
    Esys_Free: bind(esys, 'void Esys_Free(void *ptr)'),
    Esys_GetCapability: bind(
      esys,
      `uint32_t Esys_GetCapability(void *ctx, ${S}, uint32_t capability, uint32_t property, uint32_t count, _Out_ uint8_t *moreData, _Out_ void **data)`,
    ),
    Esys_PCR_Read: bind(
      esys,
      `uint32_t Esys_PCR_Read(void *ctx, ${S}, const void *selectionIn, _Out_ uint32_t *updateCounter, _Out_ void **selectionOut, _Out_ void **values)`,
    ),
    Esys_PCR_Extend: bind(esys, `uint32_t Esys_PCR_Extend(void *ctx, uint32_t pcrHandle, ${S}, const void *digests)`),
    Esys_CreatePrimary: bind(
      esys,
      `uint32_t Esys_CreatePrimary(void *ctx, uint32_t primaryHandle, ${S}, const void *inSensitive, const void *inPublic, const void *outsideInfo, const void *creationPcr, _Out_ uint32_t *objectHandle, _Out_ void **outPublic, void *creationData, void *creationHash, void *creationTicket)`,
    ),
    Esys_ReadPublic: bind(esys, `uint32_t Esys_ReadPublic(void *ctx, uint32_t object, ${S}, _Out_ void **outPublic, void *name, void *qualifiedName)`),
    Esys_EvictControl: bind(
      esys,
      `uint32_t Esys_EvictControl(void *ctx, uint32_t auth, uint32_t object, ${S}, uint32_t persistentHandle, _Out_ uint32_t *newObject)`,
    ),
    Esys_Quote: bind(
      esys,
      `uint32_t Esys_Quote(void *ctx, uint32_t signHandle, ${S}, const void *qualifyingData, const void *inScheme, const void *pcrSelect, _Out_ void **quoted, _Out_ void **signature)`,
    ),
    Esys_FlushContext: bind(esys, 'uint32_t Esys_FlushContext(void *ctx, uint32_t handle)'),
    Esys_TR_FromTPMPublic: bind(esys, `uint32_t Esys_TR_FromTPMPublic(void *ctx, uint32_t tpmHandle, ${S}, _Out_ uint32_t *object)`),
    Esys_TR_Close: bind(esys, 'uint32_t Esys_TR_Close(void *ctx, _Inout_ uint32_t *handle)'),
    Esys_TR_GetName: bind(esys, 'uint32_t Esys_TR_GetName(void *ctx, uint32_t handle, _Out_ void **name)'),
    Esys_NV_ReadPublic: bind(esys, `uint32_t Esys_NV_ReadPublic(void *ctx, uint32_t nvIndex, ${S}, _Out_ void **nvPublic, void *nvName)`),
    Esys_NV_Read: bind(
      esys,
      `uint32_t Esys_NV_Read(void *ctx, uint32_t authHandle, uint32_t nvIndex, ${S}, uint16_t size, uint16_t offset, _Out_ void **data)`,
    ),
    Esys_NV_DefineSpace: bind(
      esys,
      `uint32_t Esys_NV_DefineSpace(void *ctx, uint32_t authHandle, ${S}, const void *auth, const void *publicInfo, _Out_ uint32_t *nvHandle)`,
    ),
    Esys_NV_Write: bind(esys, `uint32_t Esys_NV_Write(void *ctx, uint32_t authHandle, uint32_t nvIndex, ${S}, const void *data, uint16_t offset)`),
    Esys_NV_UndefineSpace: bind(esys, `uint32_t Esys_NV_UndefineSpace(void *ctx, uint32_t authHandle, uint32_t nvIndex, ${S})`),
    Tss2_RC_Decode: bind(rc, 'const char *Tss2_RC_Decode(uint32_t rc)'),
    unmarshal,
    marshal,
  };
  return cached;
}
