import { INTEL_TCB_STATUSES, reject, toHex, fromHex, equalBytes } from '@joinguard/core';
import type { PckExtensions } from './pck.js';
import type { QeReport, TdQuoteBody } from './decode.js';

/*
 * Intel PCS signed JSON collateral (TCB Info v3 for TDX, Enclave Identity v2 for the TD QE) and the TCB
 * evaluation of Intel's "TDX DCAP Quote Verification" flow. The signature covers the exact bytes of the
 * "tcbInfo" / "enclaveIdentity" member value as served, so the value is cut out of the text, verified,
 * and only those verified bytes are parsed.
 */

const MALFORMED = 'TDX_COLLATERAL_MALFORMED';

/** A signed PCS JSON document: the raw signed member, its parsed value and the P-256 r‖s signature. */
export interface SignedJson<T> {
  signedBytes: Uint8Array;
  value: T;
  signature: Uint8Array;
}

function skipWs(t: string, i: number): number {
  while (i < t.length && (t[i] === ' ' || t[i] === '\n' || t[i] === '\r' || t[i] === '\t')) i++;
  return i;
}

function scanString(t: string, i: number): number {
  // t[i] === '"'; returns the index after the closing quote.
  i++;
  while (i < t.length) {
    const c = t[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  throw reject(MALFORMED, 'unterminated string in collateral JSON', { offset: i });
}

function scanValue(t: string, i: number): number {
  if (t[i] === '"') return scanString(t, i);
  if (t[i] === '{' || t[i] === '[') {
    let depth = 0;
    while (i < t.length) {
      const c = t[i];
      if (c === '"') {
        i = scanString(t, i);
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw reject(MALFORMED, 'unbalanced brackets in collateral JSON', {});
  }
  while (i < t.length && !',}] \n\r\t'.includes(t[i]!)) i++;
  return i;
}

/** The raw text of each top-level member of a JSON object, in order. */
function topLevelMembers(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = skipWs(text, 0);
  if (text[i] !== '{') throw reject(MALFORMED, 'collateral JSON is not an object', {});
  i = skipWs(text, i + 1);
  if (text[i] === '}') return out;
  for (;;) {
    if (text[i] !== '"') throw reject(MALFORMED, `collateral JSON: member name expected at ${i}`, { offset: i });
    const kEnd = scanString(text, i);
    const key = JSON.parse(text.slice(i, kEnd)) as string;
    i = skipWs(text, kEnd);
    if (text[i] !== ':') throw reject(MALFORMED, `collateral JSON: ':' expected at ${i}`, { offset: i });
    i = skipWs(text, i + 1);
    const vEnd = scanValue(text, i);
    out.set(key, text.slice(i, vEnd));
    i = skipWs(text, vEnd);
    if (text[i] === ',') {
      i = skipWs(text, i + 1);
      continue;
    }
    if (text[i] === '}') return out;
    throw reject(MALFORMED, `collateral JSON: ',' or '}' expected at ${i}`, { offset: i });
  }
}

/** Splits `{"<member>": {...}, "signature": "hex"}` into the signed bytes, the parsed member and the signature. */
export function parseSignedJson<T>(text: string, member: string, what: string): SignedJson<unknown> & { value: T } {
  try {
    JSON.parse(text);
  } catch (e) {
    throw reject(MALFORMED, `${what} is not JSON: ${(e as Error).message}`, { what });
  }
  const members = topLevelMembers(text);
  const raw = members.get(member);
  const sigText = members.get('signature');
  if (raw === undefined || sigText === undefined) {
    throw reject(MALFORMED, `${what} must have members "${member}" and "signature"`, { what, members: [...members.keys()] });
  }
  const sigHex = JSON.parse(sigText) as unknown;
  const signature = typeof sigHex === 'string' ? fromHex(sigHex) : undefined;
  if (!signature || signature.length !== 64) throw reject(MALFORMED, `${what} signature must be 64 bytes of hex (r‖s)`, { what });
  return { signedBytes: new Uint8Array(Buffer.from(raw, 'utf8')), value: JSON.parse(raw) as T, signature };
}

export interface TcbComponent {
  svn: number;
  category?: string;
  type?: string;
}

export interface TdxTcbLevel {
  tcb: { sgxtcbcomponents: TcbComponent[]; pcesvn: number; tdxtcbcomponents: TcbComponent[] };
  tcbDate: string;
  tcbStatus: string;
  advisoryIDs?: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrsigner: string;
  attributes: string;
  attributesMask: string;
  tcbLevels: { tcb: { isvsvn: number }; tcbDate: string; tcbStatus: string; advisoryIDs?: string[] }[];
}

export interface TcbInfo {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  fmspc: string;
  pceId: string;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tdxModule?: { mrsigner: string; attributes: string; attributesMask: string };
  tdxModuleIdentities?: TdxModuleIdentity[];
  tcbLevels: TdxTcbLevel[];
}

export interface EnclaveIdentity {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  tcbEvaluationDataNumber: number;
  miscselect: string;
  miscselectMask: string;
  attributes: string;
  attributesMask: string;
  mrsigner: string;
  isvprodid: number;
  tcbLevels: { tcb: { isvsvn: number }; tcbDate: string; tcbStatus: string; advisoryIDs?: string[] }[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}
function isStatusLevel(l: unknown): boolean {
  return isObj(l) && typeof l.tcbStatus === 'string' && typeof l.tcbDate === 'string' && (l.advisoryIDs === undefined || (Array.isArray(l.advisoryIDs) && l.advisoryIDs.every((a) => typeof a === 'string')));
}
function isComponents(v: unknown): v is TcbComponent[] {
  return Array.isArray(v) && v.length === 16 && v.every((c) => isObj(c) && isUint(c.svn));
}
function isHex(v: unknown, bytes: number): v is string {
  return typeof v === 'string' && v.length === bytes * 2 && fromHex(v) !== undefined;
}
function isIsvsvnLevels(v: unknown): boolean {
  return Array.isArray(v) && v.every((l) => isStatusLevel(l) && isObj((l as Record<string, unknown>).tcb) && isUint(((l as Record<string, unknown>).tcb as Record<string, unknown>).isvsvn));
}

/** Shape check of a TDX TCB Info (v3); values of the wrong type never reach the evaluation. */
export function checkTcbInfoShape(v: unknown): TcbInfo {
  const bad = (why: string): never => {
    throw reject(MALFORMED, `TCB info is malformed: ${why}`, { why });
  };
  if (!isObj(v)) return bad('not an object');
  if (v.id !== 'TDX') bad(`id is ${JSON.stringify(v.id)}, "TDX" expected (an SGX TCB info cannot evaluate a TD)`);
  if (v.version !== 3) bad(`version ${JSON.stringify(v.version)} is not supported (3 expected)`);
  if (typeof v.issueDate !== 'string' || typeof v.nextUpdate !== 'string') bad('issueDate/nextUpdate missing');
  if (!isHex(v.fmspc, 6)) bad('fmspc is not 6 bytes of hex');
  if (!isHex(v.pceId, 2)) bad('pceId is not 2 bytes of hex');
  if (!isUint(v.tcbEvaluationDataNumber)) bad('tcbEvaluationDataNumber missing');
  if (!Array.isArray(v.tcbLevels) || v.tcbLevels.length === 0) bad('tcbLevels missing');
  for (const l of v.tcbLevels as unknown[]) {
    if (!isStatusLevel(l)) bad('a TCB level lacks tcbStatus/tcbDate');
    const tcb = (l as Record<string, unknown>).tcb;
    if (!isObj(tcb) || !isComponents(tcb.sgxtcbcomponents) || !isComponents(tcb.tdxtcbcomponents) || !isUint(tcb.pcesvn)) {
      bad('a TCB level lacks 16 sgxtcbcomponents, 16 tdxtcbcomponents or pcesvn');
    }
  }
  if (v.tdxModule !== undefined) {
    const m = v.tdxModule;
    if (!isObj(m) || !isHex(m.mrsigner, 48) || !isHex(m.attributes, 8) || !isHex(m.attributesMask, 8)) bad('tdxModule is malformed');
  }
  if (v.tdxModuleIdentities !== undefined) {
    if (!Array.isArray(v.tdxModuleIdentities)) bad('tdxModuleIdentities is not an array');
    for (const m of v.tdxModuleIdentities as unknown[]) {
      if (!isObj(m) || typeof m.id !== 'string' || !isHex(m.mrsigner, 48) || !isHex(m.attributes, 8) || !isHex(m.attributesMask, 8) || !isIsvsvnLevels(m.tcbLevels)) {
        bad('a tdxModuleIdentities entry is malformed');
      }
    }
  }
  return v as unknown as TcbInfo;
}

export function checkEnclaveIdentityShape(v: unknown): EnclaveIdentity {
  const bad = (why: string): never => {
    throw reject(MALFORMED, `QE identity is malformed: ${why}`, { why });
  };
  if (!isObj(v)) return bad('not an object');
  if (v.id !== 'TD_QE') bad(`id is ${JSON.stringify(v.id)}, "TD_QE" expected`);
  if (v.version !== 2) bad(`version ${JSON.stringify(v.version)} is not supported (2 expected)`);
  if (typeof v.issueDate !== 'string' || typeof v.nextUpdate !== 'string') bad('issueDate/nextUpdate missing');
  if (!isHex(v.miscselect, 4) || !isHex(v.miscselectMask, 4)) bad('miscselect/miscselectMask are not 4 bytes of hex');
  if (!isHex(v.attributes, 16) || !isHex(v.attributesMask, 16)) bad('attributes/attributesMask are not 16 bytes of hex');
  if (!isHex(v.mrsigner, 32)) bad('mrsigner is not 32 bytes of hex');
  if (!isUint(v.isvprodid)) bad('isvprodid missing');
  if (!isUint(v.tcbEvaluationDataNumber)) bad('tcbEvaluationDataNumber missing');
  if (!isIsvsvnLevels(v.tcbLevels) || (v.tcbLevels as unknown[]).length === 0) bad('tcbLevels malformed');
  return v as unknown as EnclaveIdentity;
}

/** Intel's TCB statuses from best to worst; the status of a quote is the worst of its parts. */
export const TCB_STATUS_ORDER = INTEL_TCB_STATUSES;

export function worseStatus(a: string, b: string): string {
  const ia = TCB_STATUS_ORDER.indexOf(a as (typeof TCB_STATUS_ORDER)[number]);
  const ib = TCB_STATUS_ORDER.indexOf(b as (typeof TCB_STATUS_ORDER)[number]);
  // An unknown status counts as worst so that a new Intel status never passes by accident.
  const ra = ia < 0 ? TCB_STATUS_ORDER.length : ia;
  const rb = ib < 0 ? TCB_STATUS_ORDER.length : ib;
  return ra >= rb ? a : b;
}

// Collateral hex fields (mrsigner, masks) are decoded for every quote evaluated against the same collateral;
// decoding them once keeps the per-quote cost at the two signature verifications. Only shape-checked
// collateral values reach this, and the map is bounded.
const hexMemo = new Map<string, Uint8Array>();
function hx(s: string): Uint8Array {
  let b = hexMemo.get(s);
  if (b === undefined) {
    b = fromHex(s) ?? new Uint8Array(0);
    if (hexMemo.size >= 4096) hexMemo.clear();
    hexMemo.set(s, b);
  }
  return b;
}

export interface TcbEvaluation {
  tcbStatus: string;
  advisoryIds: string[];
  /** Platform level that matched (SGX components + PCESVN + TDX components). */
  platformTcbStatus: string;
  tcbDate: string;
  /** TDX module identity evaluation where the TCB info carries one for this module version. */
  tdxModule?: { id: string; isvSvn: number; tcbStatus: string; tcbDate: string; advisoryIds: string[] };
}

function maskedEqual(actual: Uint8Array, expected: Uint8Array, mask: Uint8Array): boolean {
  if (actual.length !== expected.length || mask.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) if ((actual[i]! & mask[i]!) !== (expected[i]! & mask[i]!)) return false;
  return true;
}

/**
 * TDX TCB level matching: the first level (Intel lists them best first) whose SGX components and PCESVN
 * are ≤ the PCK certificate's and whose TDX components are ≤ TEE_TCB_SVN. When TEE_TCB_SVN[1] (the TDX
 * module major version) is non-zero, bytes 0 and 1 describe the module and are judged by the
 * tdxModuleIdentities entry "TDX_<major>" instead of the platform levels.
 */
export function evaluateTdxTcb(info: TcbInfo, pck: PckExtensions, body: TdQuoteBody): TcbEvaluation {
  if (info.fmspc.toLowerCase() !== toHex(pck.fmspc)) {
    throw reject('TDX_TCB_INFO_FMSPC_MISMATCH', `TCB info is for FMSPC ${info.fmspc.toLowerCase()}, the PCK certificate's FMSPC is ${toHex(pck.fmspc)}`, { tcbInfoFmspc: info.fmspc, pckFmspc: toHex(pck.fmspc) });
  }
  if (info.pceId.toLowerCase() !== toHex(pck.pceId)) {
    throw reject('TDX_TCB_INFO_PCEID_MISMATCH', `TCB info is for PCE-ID ${info.pceId}, the PCK certificate's is ${toHex(pck.pceId)}`, { tcbInfoPceId: info.pceId, pckPceId: toHex(pck.pceId) });
  }
  const svn = body.teeTcbSvn;
  if (info.tdxModule) {
    const m = info.tdxModule;
    if (!equalBytes(body.mrSignerSeam, hx(m.mrsigner)) || !maskedEqual(body.seamAttributes, hx(m.attributes), hx(m.attributesMask))) {
      throw reject('TDX_MODULE_IDENTITY_MISMATCH', `the quote's MRSIGNERSEAM/SEAMATTRIBUTES do not match the TCB info's tdxModule`, {
        mrSignerSeam: toHex(body.mrSignerSeam), seamAttributes: toHex(body.seamAttributes), expectedMrSigner: m.mrsigner.toLowerCase(),
      });
    }
  }
  const tdxStart = svn[1]! > 0 ? 2 : 0;
  const level = info.tcbLevels.find((l) =>
    l.tcb.sgxtcbcomponents.every((c, i) => pck.sgxTcbComponents[i]! >= c.svn) &&
    pck.pceSvn >= l.tcb.pcesvn &&
    l.tcb.tdxtcbcomponents.every((c, i) => i < tdxStart || svn[i]! >= c.svn),
  );
  if (!level) {
    throw reject('TDX_TCB_LEVEL_NOT_FOUND', `no TCB level of TCB info (FMSPC ${info.fmspc}, evaluation ${info.tcbEvaluationDataNumber}) is met by this platform: PCK SGX SVNs ${pck.sgxTcbComponents.join(',')}, PCESVN ${pck.pceSvn}, TEE_TCB_SVN ${toHex(svn)}`, {
      fmspc: info.fmspc, tcbEvaluationDataNumber: info.tcbEvaluationDataNumber, sgxTcbComponents: pck.sgxTcbComponents, pceSvn: pck.pceSvn, teeTcbSvn: toHex(svn),
    });
  }
  const out: TcbEvaluation = {
    tcbStatus: level.tcbStatus,
    advisoryIds: [...(level.advisoryIDs ?? [])],
    platformTcbStatus: level.tcbStatus,
    tcbDate: level.tcbDate,
  };
  if (tdxStart === 2 && info.tdxModuleIdentities) {
    const id = `TDX_${svn[1]!.toString(16).padStart(2, '0').toUpperCase()}`;
    const ident = info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
    if (!ident) {
      throw reject('TDX_MODULE_IDENTITY_NOT_FOUND', `TCB info has no TDX module identity ${id} (TEE_TCB_SVN ${toHex(svn)})`, { id, available: info.tdxModuleIdentities.map((m) => m.id) });
    }
    if (!equalBytes(body.mrSignerSeam, hx(ident.mrsigner)) || !maskedEqual(body.seamAttributes, hx(ident.attributes), hx(ident.attributesMask))) {
      throw reject('TDX_MODULE_IDENTITY_MISMATCH', `the quote's MRSIGNERSEAM/SEAMATTRIBUTES do not match TDX module identity ${id}`, { id, mrSignerSeam: toHex(body.mrSignerSeam), seamAttributes: toHex(body.seamAttributes) });
    }
    const isvSvn = svn[0]!;
    const ml = ident.tcbLevels.find((l) => isvSvn >= l.tcb.isvsvn);
    if (!ml) {
      throw reject('TDX_MODULE_TCB_LEVEL_NOT_FOUND', `TDX module ${id} ISVSVN ${isvSvn} is below every level of its identity`, { id, isvSvn });
    }
    const advisoryIds = [...(ml.advisoryIDs ?? [])];
    out.tdxModule = { id, isvSvn, tcbStatus: ml.tcbStatus, tcbDate: ml.tcbDate, advisoryIds };
    out.tcbStatus = worseStatus(out.tcbStatus, ml.tcbStatus);
    for (const a of advisoryIds) if (!out.advisoryIds.includes(a)) out.advisoryIds.push(a);
  }
  return out;
}

export interface QeEvaluation {
  qeTcbStatus: string;
  advisoryIds: string[];
  tcbDate: string;
  isvSvn: number;
}

/** QE identity: MRSIGNER, ISVPRODID, masked MISCSELECT/ATTRIBUTES must match; ISVSVN picks the level. */
export function evaluateQeIdentity(identity: EnclaveIdentity, qe: QeReport): QeEvaluation {
  const mismatch = (field: string, actual: string, expected: string): never => {
    throw reject('TDX_QE_IDENTITY_MISMATCH', `QE report ${field} ${actual} does not match the QE identity (${expected})`, { field, actual, expected });
  };
  const misc = new Uint8Array(4);
  new DataView(misc.buffer).setUint32(0, qe.miscSelect, false);
  const miscExpected = hx(identity.miscselect);
  const miscMask = hx(identity.miscselectMask);
  // MISCSELECT is a little-endian u32 in the report but written big-endian (as a number) in the identity.
  if (!maskedEqual(misc, miscExpected, miscMask)) mismatch('miscselect', toHex(misc), `${identity.miscselect} mask ${identity.miscselectMask}`);
  if (!maskedEqual(qe.attributes, hx(identity.attributes), hx(identity.attributesMask))) {
    mismatch('attributes', toHex(qe.attributes), `${identity.attributes} mask ${identity.attributesMask}`);
  }
  if (!equalBytes(qe.mrSigner, hx(identity.mrsigner))) mismatch('mrsigner', toHex(qe.mrSigner), identity.mrsigner.toLowerCase());
  if (qe.isvProdId !== identity.isvprodid) mismatch('isvprodid', String(qe.isvProdId), String(identity.isvprodid));
  const level = identity.tcbLevels.find((l) => qe.isvSvn >= l.tcb.isvsvn);
  if (!level) {
    throw reject('TDX_QE_TCB_LEVEL_NOT_FOUND', `QE ISVSVN ${qe.isvSvn} is below every level of the QE identity`, { isvSvn: qe.isvSvn, levels: identity.tcbLevels.map((l) => l.tcb.isvsvn) });
  }
  return { qeTcbStatus: level.tcbStatus, advisoryIds: [...(level.advisoryIDs ?? [])], tcbDate: level.tcbDate, isvSvn: qe.isvSvn };
}
