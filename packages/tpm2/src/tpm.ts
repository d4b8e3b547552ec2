import { createHash } from 'node:crypto';
import { JoinguardError, equalBytes, inputError, toHex } from '@joinguard/core';
import {
  ESYS_TR,
  MAX_EXTRA_DATA,
  NV_INDEX_FIRST,
  NV_INDEX_LAST,
  PCR_BANKS,
  PCR_COUNT,
  PERSISTENT_FIRST,
  PERSISTENT_LAST,
  TPM2_ALG,
  TPM2_CAP_TPM_PROPERTIES,
  TPM2_ECC_NIST_P256,
  TPM2_GENERATED_VALUE,
  TPM2_PT_NV_BUFFER_MAX,
  TPM2_PT_NV_INDEX_MAX,
  TPM2_ST_ATTEST_QUOTE,
  TPMA_NV,
  TPMA_OBJECT,
  type PcrBank,
} from './constants.js';
import { C_SIZE, loadTss2, type MuType, type Tss2 } from './ffi.js';
import {
  Writer,
  marshalDigestValues,
  marshalNvPublic,
  marshalPcrSelection,
  parseDigestList,
  parseNvPublic,
  parsePcrSelection,
  parseQuoteInfo,
  parseTpmProperties,
  unwrapTpm2b,
  type NvPublic,
  type PcrSelection,
} from './marshal.js';

export type { PcrSelection, NvPublic };

/** PCR values per bank and PCR number. */
export type PcrValues = Partial<Record<PcrBank, Record<number, Uint8Array>>>;

export interface PcrReadResult {
  /** TPM's pcrUpdateCounter at the time of the read. */
  updateCounter: number;
  pcrs: PcrValues;
}

export interface AttestationKey {
  /** The ESYS_TR of the key inside this Tpm session (not a TPM handle). */
  readonly handle: number;
  /** The TPM handle for persistent keys (0x81xxxxxx); undefined for transient ones. */
  readonly persistentHandle: number | undefined;
  /** TPMT_PUBLIC, marshalled (the content of TPM2B_PUBLIC). */
  readonly public: Uint8Array;
  /** TPM2B_NAME content: nameAlg ‖ H(TPMT_PUBLIC). */
  readonly name: Uint8Array;
}

export interface Quote {
  /** TPMS_ATTEST bytes (the content of TPM2B_ATTEST): exactly what the AK signed. */
  quoted: Uint8Array;
  /** TPMT_SIGNATURE, marshalled. */
  signature: Uint8Array;
  /** The quoted PCRs, read just before the quote and checked against its pcrDigest (absent with pcrValues: false). */
  pcrs?: PcrValues;
}

export type NvAuth = 'index' | 'owner' | 'platform';

export interface NvDefineOptions {
  /** TPMA_NV; default ownerwrite|ownerread|authwrite|authread|no_da (what the Azure user-data index needs). */
  attributes?: number;
  /** Hierarchy that defines (and later undefines) the index; default owner. */
  hierarchy?: 'owner' | 'platform';
}

const DEFAULT_NV_ATTRIBUTES = TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA;

/** How many times quote() re-reads PCRs when one changed between the read and the quote. */
const QUOTE_RETRIES = 3;

const TPM_RC = {
  HANDLE: 0x08b,
  NV_RANGE: 0x146,
  NV_UNINITIALIZED: 0x14a,
  NV_DEFINED: 0x14c,
  NV_LOCKED: 0x148,
  NV_AUTHORIZATION: 0x149,
} as const;

/** The TPM_RC without the handle/parameter/session number that format-one codes carry. */
function tpmRcBase(rc: number): number {
  if (rc >>> 16 !== 0) return rc; // a tss2 layer code, not the TPM's
  return rc & 0x80 ? rc & 0xbf : rc & 0x97f;
}

/** A caller's value for a message or details, safely: hostile objects can throw from toString, bigints break JSON. */
function show(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function badArgument(message: string, details: Record<string, unknown>): JoinguardError {
  return inputError('TPM2_BAD_ARGUMENT', message, details);
}

function hex32(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

function validateSelection(sel: PcrSelection, what: string): PcrSelection {
  if (typeof sel !== 'object' || sel === null) throw badArgument(`${what} must be an object of PCR banks`, {});
  const out: PcrSelection = {};
  const entries = Object.entries(sel);
  if (entries.length === 0) throw badArgument(`${what} selects no PCR bank`, {});
  for (const [bank, pcrs] of entries) {
    if (!Object.hasOwn(PCR_BANKS, bank)) {
      throw badArgument(`${what}: unknown PCR bank "${bank}" (known: ${Object.keys(PCR_BANKS).join(', ')})`, { bank });
    }
    if (!Array.isArray(pcrs) || pcrs.length === 0) throw badArgument(`${what}: bank ${bank} selects no PCR`, { bank });
    for (const p of pcrs) {
      if (!Number.isInteger(p) || p < 0 || p >= PCR_COUNT) {
        throw badArgument(`${what}: PCR ${show(p)} in bank ${bank} is not in 0..${PCR_COUNT - 1}`, { bank, pcr: show(p) });
      }
    }
    out[bank as PcrBank] = [...new Set(pcrs as number[])].sort((a, b) => a - b);
  }
  return out;
}

function validateNvIndex(index: number): void {
  if (!Number.isInteger(index) || index < NV_INDEX_FIRST || index > NV_INDEX_LAST) {
    throw inputError(
      'TPM2_NV_INDEX_OUT_OF_RANGE',
      `NV index ${typeof index === 'number' ? hex32(index) : show(index)} is outside the NV handle range ${hex32(NV_INDEX_FIRST)}..${hex32(NV_INDEX_LAST)}`,
      { index: show(index) },
    );
  }
}

function isUint(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** Options objects come from callers that may pass anything: absent means defaults, a non-object is refused. */
function options<T extends object>(o: T | undefined | null, what: string): Partial<T> {
  if (o === undefined || o === null) return {};
  if (typeof o !== 'object') throw badArgument(`${what} options must be an object`, {});
  return o;
}

function bytesArg(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw badArgument(`${what} must be a Uint8Array`, {});
  return v;
}

/** TPMT_PUBLIC template of a restricted signing key (an AK), TPM 2.0 Part 2, 12.2.4. */
function akTemplate(alg: 'ecc' | 'rsa', unique: Uint8Array): Uint8Array {
  const attrs =
    TPMA_OBJECT.fixedTPM |
    TPMA_OBJECT.fixedParent |
    TPMA_OBJECT.sensitiveDataOrigin |
    TPMA_OBJECT.userWithAuth |
    TPMA_OBJECT.restricted |
    TPMA_OBJECT.sign;
  const t = new Writer().u16(alg === 'ecc' ? TPM2_ALG.ECC : TPM2_ALG.RSA).u16(TPM2_ALG.SHA256).u32(attrs).tpm2b(new Uint8Array(0));
  if (alg === 'ecc') {
    // TPMS_ECC_PARMS: no symmetric, ECDSA-SHA256, NIST P-256, no KDF; unique = (x, y).
    t.u16(TPM2_ALG.NULL).u16(TPM2_ALG.ECDSA).u16(TPM2_ALG.SHA256).u16(TPM2_ECC_NIST_P256).u16(TPM2_ALG.NULL);
    t.tpm2b(unique).tpm2b(new Uint8Array(0));
  } else {
    // TPMS_RSA_PARMS: no symmetric, RSASSA-SHA256, 2048 bits, default exponent; unique = modulus.
    t.u16(TPM2_ALG.NULL).u16(TPM2_ALG.RSASSA).u16(TPM2_ALG.SHA256).u16(2048).u32(0);
    t.tpm2b(unique);
  }
  return new Writer().sized(t).done();
}

function digestAlgOfSize(n: number): string | undefined {
  return ({ 20: 'sha1', 32: 'sha256', 48: 'sha384', 64: 'sha512' } as Record<number, string>)[n];
}

/**
 * One connection to a TPM through tss2-esys. Methods are synchronous (a TPM command blocks the thread for
 * its duration: a few ms on swtpm, 10-200 ms on hardware), which suits the attester, a short-lived CLI.
 * Every transient object created here is flushed by close(); every tss2-allocated output is Esys_Free'd.
 */
export class Tpm {
  readonly tcti: string;
  private readonly tss: Tss2;
  private ctx: bigint | null;
  private tctiCtx: bigint | null;
  /** Open ESYS_TRs: transient objects (flushed on close) and persistent ones (only closed in ESYS). */
  private readonly open = new Map<number, 'transient' | 'persistent'>();
  private nvBufferMax: number | undefined;

  /** Use openTpm(). */
  constructor(tss: Tss2, tcti: string, tctiCtx: bigint, ctx: bigint) {
    this.tss = tss;
    this.tcti = tcti;
    this.tctiCtx = tctiCtx;
    this.ctx = ctx;
  }

  get closed(): boolean {
    return this.ctx === null;
  }

  private context(): bigint {
    if (this.ctx === null) throw inputError('TPM2_CLOSED', `the TPM connection (${this.tcti}) is closed`, { tcti: this.tcti });
    return this.ctx;
  }

  private rcError(rc: number, command: string, details: Record<string, unknown> = {}): JoinguardError {
    return tpmRcError(this.tss, rc, command, { tcti: this.tcti, ...details });
  }

  private check(rc: number, command: string, details: Record<string, unknown> = {}): void {
    if (rc !== 0) throw this.rcError(rc, command, details);
  }

  /** Fills a tss2 C structure from TPM wire bytes (Tss2_MU_<type>_Unmarshal). */
  private toC(type: MuType, wire: Uint8Array): Uint8Array {
    const dest = new Uint8Array(C_SIZE[type]);
    const offset = [0];
    this.check(this.tss.unmarshal[type](wire, wire.length, offset, dest), `Tss2_MU_${type}_Unmarshal`);
    if (Number(offset[0]) !== wire.length) {
      throw new JoinguardError('TPM2_INTERNAL', `Tss2_MU_${type}_Unmarshal consumed ${offset[0]} of ${wire.length} bytes`, { type }, { kind: 'internal' });
    }
    return dest;
  }

  /** Turns a tss2-allocated output structure into wire bytes (Tss2_MU_<type>_Marshal), then frees it. */
  private fromC(type: MuType, ptr: unknown): Uint8Array {
    if (typeof ptr !== 'bigint' || ptr === 0n) {
      throw new JoinguardError('TPM2_MALFORMED_RESPONSE', `tss2 returned no ${type}`, { type }, { kind: 'internal' });
    }
    try {
      const out = new Uint8Array(C_SIZE[type] + 64);
      const offset = [0];
      this.check(this.tss.marshal[type](ptr, out, out.length, offset), `Tss2_MU_${type}_Marshal`);
      return out.slice(0, Number(offset[0]));
    } finally {
      this.tss.Esys_Free(ptr);
    }
  }

  /** Frees every non-null pointer in the out-arrays (used when a later step fails). */
  private freeAll(...outs: unknown[][]): void {
    for (const o of outs) if (typeof o[0] === 'bigint' && o[0] !== 0n) this.tss.Esys_Free(o[0]);
  }

  private parse<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof JoinguardError && e.kind !== 'internal') {
        throw new JoinguardError(e.code, e.message, e.details, { kind: 'internal', cause: e });
      }
      throw e;
    }
  }

  /** A fixed TPM property (TPM2_CAP_TPM_PROPERTIES), or undefined when the TPM does not report it. */
  getProperty(property: number): number | undefined {
    const ctx = this.context();
    const more = [0];
    const data: unknown[] = [null];
    this.check(
      this.tss.Esys_GetCapability(ctx, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, TPM2_CAP_TPM_PROPERTIES, property, 1, more, data),
      'Esys_GetCapability',
      { property },
    );
    const props = this.parse(() => parseTpmProperties(this.fromC('TPMS_CAPABILITY_DATA', data[0])));
    return props.get(property);
  }

  /** Reads the selected PCRs; TPM2_PCR_Read returns at most 8 per call, so this loops until all are read. */
  pcrRead(selection: PcrSelection): PcrReadResult {
    const sel = validateSelection(selection, 'pcrRead selection');
    for (let attempt = 0; ; attempt++) {
      const result = this.pcrReadOnce(sel);
      if (result) return result;
      if (attempt >= QUOTE_RETRIES) {
        throw new JoinguardError('TPM2_PCRS_CHANGING', `PCRs kept changing while being read (${QUOTE_RETRIES + 1} attempts)`, {}, { kind: 'internal' });
      }
    }
  }

  /** One consistent read, or undefined when pcrUpdateCounter moved between two TPM2_PCR_Read calls. */
  private pcrReadOnce(sel: PcrSelection): PcrReadResult | undefined {
    const ctx = this.context();
    const remaining = new Map<PcrBank, Set<number>>();
    for (const [bank, pcrs] of Object.entries(sel) as [PcrBank, number[]][]) remaining.set(bank, new Set(pcrs));
    const pcrs: PcrValues = {};
    let counter: number | undefined;
    while ([...remaining.values()].some((s) => s.size > 0)) {
      const ask: PcrSelection = {};
      for (const [bank, s] of remaining) if (s.size > 0) ask[bank] = [...s];
      const updateCounter = [0];
      const selOut: unknown[] = [null];
      const values: unknown[] = [null];
      this.check(
        this.tss.Esys_PCR_Read(ctx, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, this.toC('TPML_PCR_SELECTION', marshalPcrSelection(ask)), updateCounter, selOut, values),
        'Esys_PCR_Read',
        { selection: ask },
      );
      let selected: ReturnType<typeof parsePcrSelection>;
      try {
        selected = this.parse(() => parsePcrSelection(this.fromC('TPML_PCR_SELECTION', selOut[0])));
      } catch (e) {
        this.freeAll(values);
        throw e;
      }
      const digests = this.parse(() => parseDigestList(this.fromC('TPML_DIGEST', values[0])));
      if (counter !== undefined && counter !== updateCounter[0]) return undefined;
      counter = updateCounter[0]!;
      let i = 0;
      let progress = 0;
      for (const s of selected) {
        for (const p of s.pcrs) {
          const d = digests[i++];
          if (d === undefined || s.bank === undefined || !remaining.get(s.bank)?.has(p)) {
            throw new JoinguardError('TPM2_MALFORMED_RESPONSE', 'TPM2_PCR_Read returned PCRs that were not asked for or too few digests', { selected, digests: digests.length }, { kind: 'internal' });
          }
          (pcrs[s.bank] ??= {})[p] = d;
          remaining.get(s.bank)!.delete(p);
          progress++;
        }
      }
      if (progress === 0) {
        const missing = Object.fromEntries([...remaining].filter(([, s]) => s.size > 0).map(([b, s]) => [b, [...s]]));
        throw inputError('TPM2_PCR_BANK_UNAVAILABLE', `the TPM returned no value for ${JSON.stringify(missing)}: the PCR bank is not allocated`, { missing, tcti: this.tcti });
      }
    }
    return { updateCounter: counter ?? 0, pcrs };
  }

  /** Extends PCR `pcr` in each given bank (the digest size must match the bank). */
  pcrExtend(pcr: number, digests: Partial<Record<PcrBank, Uint8Array>>): void {
    const ctx = this.context();
    if (!Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT) throw badArgument(`PCR ${show(pcr)} is not in 0..${PCR_COUNT - 1}`, { pcr: show(pcr) });
    const list = Object.entries(options(digests, 'pcrExtend digests')) as [PcrBank, Uint8Array][];
    if (list.length === 0 || list.length > 16) throw badArgument('pcrExtend needs between 1 and 16 bank digests', { banks: list.length });
    for (const [bank, d] of list) {
      if (!Object.hasOwn(PCR_BANKS, bank)) throw badArgument(`unknown PCR bank "${bank}"`, { bank });
      const spec = PCR_BANKS[bank];
      if (!(d instanceof Uint8Array) || d.length !== spec.size) {
        throw badArgument(`the ${bank} digest for PCR ${pcr} must be ${spec.size} bytes`, { bank, pcr, length: d instanceof Uint8Array ? d.length : undefined });
      }
    }
    this.check(
      this.tss.Esys_PCR_Extend(ctx, ESYS_TR.PCR0 + pcr, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, this.toC('TPML_DIGEST_VALUES', marshalDigestValues(list))),
      'Esys_PCR_Extend',
      { pcr },
    );
  }

  /**
   * Creates an attestation key: a restricted signing primary key in the endorsement hierarchy.
   *
   * A primary (TPM2_CreatePrimary) rather than an EK-parented child (Create + Load) because the endorsement
   * hierarchy derives it from the EPS and the template alone: no storage key, no second command, one handle
   * to flush, and the same template gives the same AK on every boot of this TPM, so a verifier can pin it
   * (runtimeData carries its digest). `unique` (≤ 32 bytes for ECC) selects a different key when wanted.
   */
  createAk(opts: { alg?: 'ecc' | 'rsa'; unique?: Uint8Array } = {}): AttestationKey {
    const ctx = this.context();
    opts = options(opts, 'createAk');
    const alg = opts.alg ?? 'ecc';
    if (alg !== 'ecc' && alg !== 'rsa') throw badArgument(`AK algorithm ${show(alg)} is not ecc or rsa`, { alg: show(alg) });
    const unique = opts.unique === undefined ? new Uint8Array(0) : bytesArg(opts.unique, 'unique');
    if (unique.length > (alg === 'ecc' ? 32 : 256)) throw badArgument(`unique is ${unique.length} bytes, too long for ${alg}`, { length: unique.length });
    const sensitive = new Writer().sized(new Writer().tpm2b(new Uint8Array(0)).tpm2b(new Uint8Array(0))).done();
    const handle = [0];
    const outPublic: unknown[] = [null];
    this.check(
      this.tss.Esys_CreatePrimary(
        ctx,
        ESYS_TR.RH_ENDORSEMENT,
        ESYS_TR.PASSWORD,
        ESYS_TR.NONE,
        ESYS_TR.NONE,
        this.toC('TPM2B_SENSITIVE_CREATE', sensitive),
        this.toC('TPM2B_PUBLIC', akTemplate(alg, unique)),
        this.toC('TPM2B_DATA', new Uint8Array([0, 0])),
        this.toC('TPML_PCR_SELECTION', new Uint8Array([0, 0, 0, 0])),
        handle,
        outPublic,
        null,
        null,
        null,
      ),
      'Esys_CreatePrimary',
      { hierarchy: 'endorsement', alg },
    );
    const h = handle[0]!;
    this.open.set(h, 'transient');
    try {
      const pub = this.parse(() => unwrapTpm2b(this.fromC('TPM2B_PUBLIC', outPublic[0]), 'TPM2B_PUBLIC'));
      return { handle: h, persistentHandle: undefined, public: pub, name: this.getName(h) };
    } catch (e) {
      this.flushQuietly(h);
      throw e;
    }
  }

  /** Opens a key that already lives at a persistent handle (e.g. Azure's vTPM AK at 0x81000003). */
  loadPersistentKey(persistentHandle: number): AttestationKey {
    const ctx = this.context();
    if (!Number.isInteger(persistentHandle) || persistentHandle < PERSISTENT_FIRST || persistentHandle > PERSISTENT_LAST) {
      throw inputError('TPM2_HANDLE_OUT_OF_RANGE', `${show(persistentHandle)} is not a persistent handle (${hex32(PERSISTENT_FIRST)}..${hex32(PERSISTENT_LAST)})`, {
        handle: show(persistentHandle),
      });
    }
    const tr = this.fromTpmPublic(persistentHandle, 'TPM2_HANDLE_ABSENT', 'persistent object');
    this.open.set(tr, 'persistent');
    try {
      const outPublic: unknown[] = [null];
      this.check(this.tss.Esys_ReadPublic(ctx, tr, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, outPublic, null, null), 'Esys_ReadPublic', {
        handle: hex32(persistentHandle),
      });
      const pub = this.parse(() => unwrapTpm2b(this.fromC('TPM2B_PUBLIC', outPublic[0]), 'TPM2B_PUBLIC'));
      return { handle: tr, persistentHandle, public: pub, name: this.getName(tr) };
    } catch (e) {
      this.flushQuietly(tr);
      throw e;
    }
  }

  /** Makes a transient key persistent at `persistentHandle` (owner hierarchy) and returns the persistent key. */
  persistKey(key: AttestationKey, persistentHandle: number): AttestationKey {
    const ctx = this.context();
    this.requireOpen(key);
    if (!Number.isInteger(persistentHandle) || persistentHandle < PERSISTENT_FIRST || persistentHandle > PERSISTENT_LAST) {
      throw inputError('TPM2_HANDLE_OUT_OF_RANGE', `${show(persistentHandle)} is not a persistent handle`, { handle: show(persistentHandle) });
    }
    const out = [0];
    this.check(
      this.tss.Esys_EvictControl(ctx, ESYS_TR.RH_OWNER, key.handle, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, persistentHandle, out),
      'Esys_EvictControl',
      { handle: hex32(persistentHandle) },
    );
    this.open.set(out[0]!, 'persistent');
    return { handle: out[0]!, persistentHandle, public: key.public, name: key.name };
  }

  /** Removes a persistent key from the TPM (TPM2_EvictControl on its persistent handle). */
  evictKey(key: AttestationKey): void {
    const ctx = this.context();
    this.requireOpen(key);
    if (key.persistentHandle === undefined) throw badArgument('evictKey needs a persistent key', {});
    const out = [0];
    this.check(
      this.tss.Esys_EvictControl(ctx, ESYS_TR.RH_OWNER, key.handle, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, key.persistentHandle, out),
      'Esys_EvictControl',
      { handle: hex32(key.persistentHandle) },
    );
    // ESYS invalidates the ESYS_TR of an evicted persistent object itself.
    this.open.delete(key.handle);
  }

  /**
   * TPM2_Quote over the chosen PCRs with `extraData` as qualifyingData, signed with the key's own scheme.
   * Unless `pcrValues: false`, the PCRs are read first and the quote's pcrDigest is checked against them (a PCR
   * extended in between makes the pair retried), so the values sent with the quote are the quoted ones.
   */
  quote(key: AttestationKey, quoteOptions: { extraData: Uint8Array; pcrs: PcrSelection; pcrValues?: boolean }): Quote {
    const ctx = this.context();
    this.requireOpen(key);
    const opts = options(quoteOptions, 'quote');
    const extraData = bytesArg(opts.extraData, 'extraData');
    if (extraData.length > MAX_EXTRA_DATA) {
      throw badArgument(`extraData is ${extraData.length} bytes; a TPM accepts at most ${MAX_EXTRA_DATA}`, { length: extraData.length });
    }
    const sel = validateSelection(opts.pcrs as PcrSelection, 'quote PCR selection');
    const qualifyingData = this.toC('TPM2B_DATA', new Writer().tpm2b(extraData).done());
    const scheme = this.toC('TPMT_SIG_SCHEME', new Writer().u16(TPM2_ALG.NULL).done());
    const pcrSelect = this.toC('TPML_PCR_SELECTION', marshalPcrSelection(sel));
    for (let attempt = 0; ; attempt++) {
      const values = opts.pcrValues === false ? undefined : this.pcrRead(sel).pcrs;
      const quoted: unknown[] = [null];
      const signature: unknown[] = [null];
      this.check(this.tss.Esys_Quote(ctx, key.handle, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, qualifyingData, scheme, pcrSelect, quoted, signature), 'Esys_Quote', {
        selection: sel,
      });
      let attest: Uint8Array;
      try {
        attest = this.parse(() => unwrapTpm2b(this.fromC('TPM2B_ATTEST', quoted[0]), 'TPM2B_ATTEST'));
      } catch (e) {
        this.freeAll(signature);
        throw e;
      }
      const sig = this.fromC('TPMT_SIGNATURE', signature[0]);
      if (values === undefined) return { quoted: attest, signature: sig };
      if (this.quoteMatches(attest, extraData, sel, values)) return { quoted: attest, signature: sig, pcrs: values };
      if (attempt >= QUOTE_RETRIES) {
        throw new JoinguardError('TPM2_PCRS_CHANGING', `the quoted pcrDigest differed from the PCRs read just before it ${QUOTE_RETRIES + 1} times`, {}, { kind: 'internal' });
      }
    }
  }

  /** The attester's own consistency check; the verifier (packages/tpm) does the real verification. */
  private quoteMatches(attest: Uint8Array, extraData: Uint8Array, sel: PcrSelection, values: PcrValues): boolean {
    const info = this.parse(() => parseQuoteInfo(attest));
    if (info.magic !== TPM2_GENERATED_VALUE || info.type !== TPM2_ST_ATTEST_QUOTE || !equalBytes(info.extraData, extraData)) {
      throw new JoinguardError('TPM2_MALFORMED_RESPONSE', 'TPM2_Quote returned a TPMS_ATTEST that is not a quote over our extraData', {
        magic: info.magic,
        type: info.type,
      }, { kind: 'internal' });
    }
    const alg = digestAlgOfSize(info.pcrDigest.length);
    if (alg === undefined) return false;
    const h = createHash(alg);
    for (const s of info.pcrSelect) {
      for (const p of s.pcrs) {
        const v = s.bank === undefined ? undefined : values[s.bank]?.[p];
        if (v === undefined || !sel[s.bank!]?.includes(p)) return false;
        h.update(v);
      }
    }
    return equalBytes(new Uint8Array(h.digest()), info.pcrDigest);
  }

  /** TPMS_NV_PUBLIC of an NV index; TPM2_NV_INDEX_ABSENT when it is not defined. */
  nvReadPublic(index: number): NvPublic & { name: Uint8Array } {
    validateNvIndex(index);
    const tr = this.fromTpmPublic(index, 'TPM2_NV_INDEX_ABSENT', 'NV index');
    try {
      return { ...this.nvPublicOf(tr, index), name: this.getName(tr) };
    } finally {
      this.closeTr(tr);
    }
  }

  /**
   * Reads an NV index whole (or `size` bytes from `offset`), in chunks of TPM2_PT_NV_BUFFER_MAX: AK
   * certificates and Azure's HCL report (0x01400001, a few KiB) are larger than one TPM2_NV_Read.
   * Authorization defaults to the index itself when it allows authread, else the owner, else the platform,
   * each with the empty password.
   */
  nvRead(index: number, opts: { offset?: number; size?: number; auth?: NvAuth } = {}): Uint8Array {
    const ctx = this.context();
    opts = options(opts, 'nvRead');
    validateNvIndex(index);
    const tr = this.fromTpmPublic(index, 'TPM2_NV_INDEX_ABSENT', 'NV index');
    try {
      const pub = this.nvPublicOf(tr, index);
      const offset: unknown = opts.offset ?? 0;
      const size: unknown = isUint(offset) ? (opts.size ?? pub.dataSize - offset) : opts.size;
      if (!isUint(offset) || !isUint(size) || offset + size > pub.dataSize) {
        throw inputError('TPM2_NV_INDEX_OUT_OF_RANGE', `cannot read ${show(size)} bytes at offset ${show(offset)} of NV index ${hex32(index)}, which holds ${pub.dataSize}`, {
          index: hex32(index),
          offset: show(offset),
          size: show(size),
          dataSize: pub.dataSize,
        });
      }
      if (!(pub.attributes & TPMA_NV.WRITTEN)) {
        throw inputError('TPM2_NV_INDEX_UNWRITTEN', `NV index ${hex32(index)} has never been written`, { index: hex32(index) });
      }
      const auth = this.nvAuthHandle(tr, index, pub.attributes, 'read', opts.auth);
      const chunk = this.nvChunk();
      const out = new Uint8Array(size);
      for (let done = 0; done < size; ) {
        const n = Math.min(chunk, size - done);
        const data: unknown[] = [null];
        this.check(this.tss.Esys_NV_Read(ctx, auth, tr, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, n, offset + done, data), 'Esys_NV_Read', {
          index: hex32(index),
          offset: offset + done,
          size: n,
        });
        const got = this.parse(() => unwrapTpm2b(this.fromC('TPM2B_MAX_NV_BUFFER', data[0]), 'TPM2B_MAX_NV_BUFFER'));
        if (got.length !== n) {
          throw new JoinguardError('TPM2_MALFORMED_RESPONSE', `TPM2_NV_Read returned ${got.length} bytes, ${n} were asked`, { index: hex32(index) }, { kind: 'internal' });
        }
        out.set(got, done);
        done += n;
      }
      return out;
    } finally {
      this.closeTr(tr);
    }
  }

  /** Defines an ordinary NV index with an empty authValue (e.g. Azure's user-data index 0x01400002, 64 bytes). */
  nvDefine(index: number, size: number, opts: NvDefineOptions = {}): void {
    const ctx = this.context();
    opts = options(opts, 'nvDefine');
    validateNvIndex(index);
    const attributes = opts.attributes ?? DEFAULT_NV_ATTRIBUTES;
    if (!Number.isInteger(attributes) || attributes < 0 || attributes > 0xffffffff) throw badArgument('NV attributes must be a 32-bit TPMA_NV', { attributes: show(attributes) });
    const max = this.getProperty(TPM2_PT_NV_INDEX_MAX) ?? 2048;
    if (!Number.isInteger(size) || size < 1 || size > max) {
      throw inputError('TPM2_NV_INDEX_OUT_OF_RANGE', `NV index size ${show(size)} is not in 1..${max} (TPM2_PT_NV_INDEX_MAX)`, { size: show(size), max });
    }
    const hierarchy = opts.hierarchy === 'platform' ? ESYS_TR.RH_PLATFORM : ESYS_TR.RH_OWNER;
    const pub = marshalNvPublic({ nvIndex: index, nameAlg: TPM2_ALG.SHA256, attributes, authPolicy: new Uint8Array(0), dataSize: size });
    const nvHandle = [0];
    const rc = this.tss.Esys_NV_DefineSpace(
      ctx,
      hierarchy,
      ESYS_TR.PASSWORD,
      ESYS_TR.NONE,
      ESYS_TR.NONE,
      this.toC('TPM2B_AUTH', new Uint8Array([0, 0])),
      this.toC('TPM2B_NV_PUBLIC', pub),
      nvHandle,
    );
    if (rc !== 0 && tpmRcBase(rc) === TPM_RC.NV_DEFINED) {
      throw inputError('TPM2_NV_INDEX_EXISTS', `NV index ${hex32(index)} is already defined`, { index: hex32(index), rc });
    }
    this.check(rc, 'Esys_NV_DefineSpace', { index: hex32(index), size, attributes: hex32(attributes) });
    this.closeTr(nvHandle[0]!);
  }

  /** Writes `data` at `offset` (default 0) in chunks of TPM2_PT_NV_BUFFER_MAX. */
  nvWrite(index: number, data: Uint8Array, opts: { offset?: number; auth?: NvAuth } = {}): void {
    const ctx = this.context();
    opts = options(opts, 'nvWrite');
    validateNvIndex(index);
    const bytes = bytesArg(data, 'NV data');
    const tr = this.fromTpmPublic(index, 'TPM2_NV_INDEX_ABSENT', 'NV index');
    try {
      const pub = this.nvPublicOf(tr, index);
      const offset: unknown = opts.offset ?? 0;
      if (!isUint(offset) || offset + bytes.length > pub.dataSize) {
        throw inputError('TPM2_NV_INDEX_OUT_OF_RANGE', `cannot write ${bytes.length} bytes at offset ${show(offset)} of NV index ${hex32(index)}, which holds ${pub.dataSize}`, {
          index: hex32(index),
          offset: show(offset),
          size: bytes.length,
          dataSize: pub.dataSize,
        });
      }
      const auth = this.nvAuthHandle(tr, index, pub.attributes, 'write', opts.auth);
      const chunk = this.nvChunk();
      for (let done = 0; done < bytes.length || (bytes.length === 0 && done === 0); ) {
        const n = Math.min(chunk, bytes.length - done);
        const buf = this.toC('TPM2B_MAX_NV_BUFFER', new Writer().tpm2b(bytes.subarray(done, done + n)).done());
        const rc = this.tss.Esys_NV_Write(ctx, auth, tr, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE, buf, offset + done);
        if (rc !== 0 && tpmRcBase(rc) === TPM_RC.NV_LOCKED) {
          throw inputError('TPM2_NV_INDEX_LOCKED', `NV index ${hex32(index)} is write-locked`, { index: hex32(index), rc });
        }
        this.check(rc, 'Esys_NV_Write', { index: hex32(index), offset: offset + done, size: n });
        done += n;
        if (n === 0) break;
      }
    } finally {
      this.closeTr(tr);
    }
  }

  /** Deletes an NV index defined by the owner (or the platform, with hierarchy: 'platform'). */
  nvUndefine(index: number, opts: { hierarchy?: 'owner' | 'platform' } = {}): void {
    const ctx = this.context();
    opts = options(opts, 'nvUndefine');
    validateNvIndex(index);
    const tr = this.fromTpmPublic(index, 'TPM2_NV_INDEX_ABSENT', 'NV index');
    const hierarchy = opts.hierarchy === 'platform' ? ESYS_TR.RH_PLATFORM : ESYS_TR.RH_OWNER;
    const rc = this.tss.Esys_NV_UndefineSpace(ctx, hierarchy, tr, ESYS_TR.PASSWORD, ESYS_TR.NONE, ESYS_TR.NONE);
    if (rc !== 0) {
      this.closeTr(tr);
      throw this.rcError(rc, 'Esys_NV_UndefineSpace', { index: hex32(index) });
    }
    // A successful undefine already released the ESYS_TR.
  }

  /** Flushes a transient key (or releases the session's reference to a persistent one). */
  flush(key: AttestationKey | number): void {
    const ctx = this.context();
    const handle = typeof key === 'number' ? key : key?.handle;
    const kind = this.open.get(handle);
    if (kind === undefined) throw inputError('TPM2_HANDLE_NOT_OPEN', `handle ${show(handle)} is not open in this TPM session`, { handle: show(handle) });
    this.open.delete(handle);
    if (kind === 'persistent') this.closeTr(handle);
    else this.check(this.tss.Esys_FlushContext(ctx, handle), 'Esys_FlushContext', { handle });
  }

  /** Flushes every transient object this session created, then finalizes ESYS and the TCTI. Idempotent. */
  close(): void {
    if (this.ctx === null) return;
    for (const [h, kind] of [...this.open]) {
      if (kind === 'transient') this.flushQuietly(h);
      else this.closeTr(h);
    }
    this.open.clear();
    const ctxRef = [this.ctx];
    this.ctx = null;
    this.tss.Esys_Finalize(ctxRef);
    const tctiRef = [this.tctiCtx];
    this.tctiCtx = null;
    this.tss.Tss2_TctiLdr_Finalize(tctiRef);
  }

  /** ESYS_TR handles of the transient objects still loaded by this session (tests check for leaks). */
  get transientHandles(): number[] {
    return [...this.open].filter(([, k]) => k === 'transient').map(([h]) => h);
  }

  private requireOpen(key: AttestationKey): void {
    if (typeof key !== 'object' || key === null || !this.open.has(key.handle)) {
      throw inputError('TPM2_HANDLE_NOT_OPEN', 'the key is not open in this TPM session (flushed, or from another session)', {});
    }
  }

  private flushQuietly(handle: number): void {
    this.open.delete(handle);
    if (this.ctx !== null) this.tss.Esys_FlushContext(this.ctx, handle);
  }

  private closeTr(handle: number): void {
    this.open.delete(handle);
    if (this.ctx !== null) this.tss.Esys_TR_Close(this.ctx, [handle]);
  }

  private getName(tr: number): Uint8Array {
    const name: unknown[] = [null];
    this.check(this.tss.Esys_TR_GetName(this.context(), tr, name), 'Esys_TR_GetName');
    return this.parse(() => unwrapTpm2b(this.fromC('TPM2B_NAME', name[0]), 'TPM2B_NAME'));
  }

  /** ESYS_TR for a TPM handle (reads its public area from the TPM); `absentCode` when there is nothing there. */
  private fromTpmPublic(tpmHandle: number, absentCode: string, what: string): number {
    const out = [0];
    const rc = this.tss.Esys_TR_FromTPMPublic(this.context(), tpmHandle, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, out);
    if (rc !== 0 && tpmRcBase(rc) === TPM_RC.HANDLE) {
      throw inputError(absentCode, `${what} ${hex32(tpmHandle)} is not defined in the TPM`, { handle: hex32(tpmHandle), rc });
    }
    this.check(rc, 'Esys_TR_FromTPMPublic', { handle: hex32(tpmHandle) });
    return out[0]!;
  }

  private nvPublicOf(tr: number, index: number): NvPublic {
    const out: unknown[] = [null];
    this.check(this.tss.Esys_NV_ReadPublic(this.context(), tr, ESYS_TR.NONE, ESYS_TR.NONE, ESYS_TR.NONE, out, null), 'Esys_NV_ReadPublic', { index: hex32(index) });
    return this.parse(() => parseNvPublic(unwrapTpm2b(this.fromC('TPM2B_NV_PUBLIC', out[0]), 'TPM2B_NV_PUBLIC')));
  }

  private nvAuthHandle(tr: number, index: number, attributes: number, op: 'read' | 'write', wanted: NvAuth | undefined): number {
    const bits =
      op === 'read'
        ? { index: TPMA_NV.AUTHREAD, owner: TPMA_NV.OWNERREAD, platform: TPMA_NV.PPREAD }
        : { index: TPMA_NV.AUTHWRITE, owner: TPMA_NV.OWNERWRITE, platform: TPMA_NV.PPWRITE };
    const handles = { index: tr, owner: ESYS_TR.RH_OWNER, platform: ESYS_TR.RH_PLATFORM };
    if (wanted !== undefined) {
      if (!Object.hasOwn(handles, wanted)) throw badArgument(`NV auth ${show(wanted)} is not index, owner or platform`, { auth: show(wanted) });
      return handles[wanted];
    }
    for (const k of ['index', 'owner', 'platform'] as const) if (attributes & bits[k]) return handles[k];
    throw inputError('TPM2_NV_ACCESS_DENIED', `NV index ${hex32(index)} allows ${op} only with a policy, which this attester does not use`, {
      index: hex32(index),
      attributes: hex32(attributes),
    });
  }

  /** Bytes per TPM2_NV_Read/NV_Write: TPM2_PT_NV_BUFFER_MAX, bounded by tss2's TPM2B_MAX_NV_BUFFER (2048). */
  private nvChunk(): number {
    if (this.nvBufferMax === undefined) {
      const v = this.getProperty(TPM2_PT_NV_BUFFER_MAX);
      this.nvBufferMax = v === undefined || v < 1 ? 512 : Math.min(v, 2048);
    }
    return this.nvBufferMax;
  }
}

/** A TPM2_RC error for a non-zero TSS2_RC, with tss2's own decoding of it. */
export function tpmRcError(tss: Tss2, rc: number, command: string, details: Record<string, unknown> = {}): JoinguardError {
  let decoded: string;
  try {
    decoded = String(tss.Tss2_RC_Decode(rc));
  } catch {
    decoded = 'undecodable';
  }
  return new JoinguardError('TPM2_RC', `${command} failed with ${hex32(rc)}: ${decoded}`, { rc, rcHex: hex32(rc), decoded, command, ...details }, { kind: 'internal' });
}

const TCTI_RE = /^[A-Za-z0-9_./-]+(?::[\x20-\x7e]*)?$/;

/**
 * Opens a TPM through a tss2 TCTI configuration string: `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`,
 * `mssim:...`. Throws TPM2_TCTI_INVALID for a malformed string or an unknown TCTI, TPM2_TCTI_UNAVAILABLE when the
 * TPM cannot be reached, TPM2_LIBRARY_MISSING when tss2 is not installed.
 */
export function openTpm(tcti: string): Tpm {
  if (typeof tcti !== 'string' || tcti.length === 0 || tcti.length > 1024 || !TCTI_RE.test(tcti)) {
    throw inputError('TPM2_TCTI_INVALID', `${show(tcti)} is not a TCTI configuration (name[:config], e.g. device:/dev/tpmrm0)`, {
      tcti: show(tcti),
    });
  }
  const tss = loadTss2();
  const tctiOut: unknown[] = [null];
  const rc = tss.Tss2_TctiLdr_Initialize(tcti, tctiOut);
  if (rc !== 0) {
    const e = tpmRcError(tss, rc, 'Tss2_TctiLdr_Initialize', { tcti });
    const name = tcti.split(':')[0]!;
    const known = tctiLibraryPresent(tss, name);
    if (!known) {
      throw inputError('TPM2_TCTI_INVALID', `TCTI "${name}" is not available (no libtss2-tcti-${name}.so.0): ${e.details.decoded as string}`, { ...e.details });
    }
    throw new JoinguardError('TPM2_TCTI_UNAVAILABLE', `cannot open the TPM through "${tcti}": ${e.details.decoded as string}`, e.details, { kind: 'internal' });
  }
  const tctiCtx = tctiOut[0] as bigint;
  const ctxOut: unknown[] = [null];
  const rc2 = tss.Esys_Initialize(ctxOut, tctiCtx, null);
  if (rc2 !== 0) {
    tss.Tss2_TctiLdr_Finalize([tctiCtx]);
    throw tpmRcError(tss, rc2, 'Esys_Initialize', { tcti });
  }
  return new Tpm(tss, tcti, tctiCtx, ctxOut[0] as bigint);
}

/** Whether the TCTI named in a configuration string has a library tctildr could load. */
function tctiLibraryPresent(tss: Tss2, name: string): boolean {
  if (name.includes('/')) return true; // a path: tctildr's own error says what went wrong
  for (const lib of [`libtss2-tcti-${name}.so.0`, `libtss2-tcti-${name}.so`, `libtss2-${name}.so.0`, `libtss2-${name}.so`]) {
    try {
      tss.koffi.load(lib).unload();
      return true;
    } catch {
      // try the next spelling
    }
  }
  return false;
}

/** The hex form of PCR values, as the evidence JSON carries them: {"sha256": {"0": "ab.."}}. */
export function pcrValuesToHex(v: PcrValues): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [bank, pcrs] of Object.entries(v)) {
    out[bank] = {};
    for (const [p, d] of Object.entries(pcrs as Record<number, Uint8Array>)) out[bank]![p] = toHex(d);
  }
  return out;
}
