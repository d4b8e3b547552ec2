import { reject, toHex } from '@joinguard/core';
import { DER_ENUMERATED, DER_INTEGER, DER_OCTET_STRING, DER_OID, DER_SEQUENCE, derOid, derSmallUint, readDerElements, type DerElement } from './der.js';

/** Intel SGX PCK certificate extensions (Intel "SGX PCK Certificate and CRL Profile"). */
export const SGX_EXTENSIONS_OID = '1.2.840.113741.1.13.1';
const PPID = `${SGX_EXTENSIONS_OID}.1`;
const TCB = `${SGX_EXTENSIONS_OID}.2`;
const PCEID = `${SGX_EXTENSIONS_OID}.3`;
const FMSPC = `${SGX_EXTENSIONS_OID}.4`;
const SGX_TYPE = `${SGX_EXTENSIONS_OID}.5`;
const PCESVN = `${TCB}.17`;
const CPUSVN = `${TCB}.18`;

export interface PckExtensions {
  ppid: Uint8Array;
  /** SGX TCB components 1..16 (index 0 = component 1). */
  sgxTcbComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  sgxType: number;
}

const CODE = 'TDX_PCK_EXTENSION_MALFORMED';

function pairs(seqContents: Uint8Array, what: string): Map<string, DerElement> {
  const m = new Map<string, DerElement>();
  for (const el of readDerElements(seqContents, CODE, what)) {
    if (el.tag !== DER_SEQUENCE) throw reject(CODE, `${what}: expected a SEQUENCE {OID, value}, got tag 0x${el.tag.toString(16)}`, {});
    const parts = readDerElements(el.value, CODE, what);
    if (parts.length !== 2 || parts[0]!.tag !== DER_OID) throw reject(CODE, `${what}: expected a SEQUENCE {OID, value}`, { elements: parts.length });
    const oid = derOid(parts[0]!.value);
    if (m.has(oid)) throw reject(CODE, `${what}: ${oid} appears twice`, { oid });
    m.set(oid, parts[1]!);
  }
  return m;
}

function need(m: Map<string, DerElement>, oid: string, tag: number, what: string): Uint8Array {
  const el = m.get(oid);
  if (!el) throw reject(CODE, `PCK certificate SGX extensions lack ${what} (${oid})`, { oid });
  if (el.tag !== tag) throw reject(CODE, `PCK certificate SGX extension ${what} (${oid}) has tag 0x${el.tag.toString(16)}, 0x${tag.toString(16)} expected`, { oid, tag: el.tag });
  return el.value;
}

/** Parses the value (DER) of the SGX Extensions extension of a PCK certificate. */
export function parsePckExtensions(extValue: Uint8Array): PckExtensions {
  const top = readDerElements(extValue, CODE, 'SGX extensions');
  if (top.length !== 1 || top[0]!.tag !== DER_SEQUENCE) throw reject(CODE, 'SGX extensions are not one SEQUENCE', { elements: top.length });
  const m = pairs(top[0]!.value, 'SGX extensions');
  const tcbSeq = need(m, TCB, DER_SEQUENCE, 'TCB');
  const tcb = pairs(tcbSeq, 'SGX extensions TCB');
  const sgxTcbComponents: number[] = [];
  for (let i = 1; i <= 16; i++) {
    sgxTcbComponents.push(derSmallUint(need(tcb, `${TCB}.${i}`, DER_INTEGER, `SGX TCB comp${String(i).padStart(2, '0')}svn`), CODE, `comp${i}svn`));
  }
  const cpuSvn = need(tcb, CPUSVN, DER_OCTET_STRING, 'CPUSVN');
  const fmspc = need(m, FMSPC, DER_OCTET_STRING, 'FMSPC');
  const pceId = need(m, PCEID, DER_OCTET_STRING, 'PCE-ID');
  const ppid = need(m, PPID, DER_OCTET_STRING, 'PPID');
  if (cpuSvn.length !== 16 || fmspc.length !== 6 || pceId.length !== 2 || ppid.length !== 16) {
    throw reject(CODE, 'SGX extensions have a field of the wrong size (CPUSVN 16, FMSPC 6, PCE-ID 2, PPID 16 bytes expected)', {
      cpuSvn: cpuSvn.length, fmspc: toHex(fmspc), pceId: pceId.length, ppid: ppid.length,
    });
  }
  return {
    ppid,
    sgxTcbComponents,
    pceSvn: derSmallUint(need(tcb, PCESVN, DER_INTEGER, 'PCESVN'), CODE, 'PCESVN'),
    cpuSvn,
    pceId,
    fmspc,
    sgxType: derSmallUint(need(m, SGX_TYPE, DER_ENUMERATED, 'SGX Type'), CODE, 'SGX Type'),
  };
}
