import { inputError } from '@joinguard/core';
import { SnpErrorCode } from './errors.js';
import { certificatesFromBytes, parseAmdCert, type AmdCert } from './cert.js';
import { AMD_ROOT_PEMS } from './roots.generated.js';
import type { SnpProduct } from './tcb.js';

/** The pinned root of one product and the intermediates that may be used when none are supplied. */
export interface SnpTrustAnchor {
  product: SnpProduct;
  ark: AmdCert;
  /** Signs VCEKs. */
  ask?: AmdCert;
  /** Signs VLEKs. */
  asvk?: AmdCert;
}

/**
 * Trust anchors per product. The default store holds only AMD's published ARKs; a test root is trusted
 * only by a store the caller builds from it (see `trustStoreFrom`).
 */
export class SnpTrustStore {
  private readonly anchors = new Map<SnpProduct, SnpTrustAnchor>();

  constructor(anchors: SnpTrustAnchor[]) {
    for (const a of anchors) this.anchors.set(a.product, a);
  }

  get(product: SnpProduct): SnpTrustAnchor {
    const a = this.anchors.get(product);
    if (!a) throw inputError(SnpErrorCode.NO_TRUST_ANCHOR, `no trusted ARK is configured for ${product}`, { product });
    return a;
  }

  products(): SnpProduct[] {
    return [...this.anchors.keys()];
  }
}

/** Builds a store from DER or PEM certificates (PEM may hold several; roles are told by subject CN). */
export function trustStoreFrom(entries: { product: SnpProduct; ark: Uint8Array; ask?: Uint8Array; asvk?: Uint8Array }[]): SnpTrustStore {
  return new SnpTrustStore(
    entries.map((e) => {
      const one = (b: Uint8Array, what: string) => parseAmdCert(certificatesFromBytes(b, what)[0]!, what);
      const anchor: SnpTrustAnchor = { product: e.product, ark: one(e.ark, `${e.product} ARK`) };
      if (e.ask) anchor.ask = one(e.ask, `${e.product} ASK`);
      if (e.asvk) anchor.asvk = one(e.asvk, `${e.product} ASVK`);
      return anchor;
    }),
  );
}

function pemPair(file: string): [AmdCert, AmdCert] {
  const text = AMD_ROOT_PEMS[file];
  if (!text) throw new Error(`built-in AMD root file ${file} is missing`);
  const [inter, ark] = certificatesFromBytes(new Uint8Array(Buffer.from(text, 'latin1')), file);
  if (!inter || !ark) throw new Error(`built-in AMD root file ${file} must hold two certificates`);
  return [parseAmdCert(inter, `${file} intermediate`), parseAmdCert(ark, `${file} ARK`)];
}

let amdStore: SnpTrustStore | undefined;

/** AMD's ARK, ASK and ASVK for Milan, Genoa and Turin, pinned in this package (parsed once). */
export function amdTrustStore(): SnpTrustStore {
  if (amdStore) return amdStore;
  const [milanAsk, milanArk] = pemPair('ask_ark_milan.pem');
  const [genoaAsk, genoaArk] = pemPair('ask_ark_genoa.pem');
  const [turinAsk, turinArk] = pemPair('ask_ark_turin.pem');
  const [milanAsvk] = pemPair('asvk_ark_milan_vlek.pem');
  const [genoaAsvk] = pemPair('asvk_ark_genoa_vlek.pem');
  amdStore = new SnpTrustStore([
    { product: 'milan', ark: milanArk, ask: milanAsk, asvk: milanAsvk },
    { product: 'genoa', ark: genoaArk, ask: genoaAsk, asvk: genoaAsvk },
    { product: 'turin', ark: turinArk, ask: turinAsk },
  ]);
  return amdStore;
}

/** The built-in PEM text (ASK or ASVK, then ARK) by file name, e.g. for a KDS cache seeded offline. */
export function amdRootPem(file: keyof typeof AMD_ROOT_PEMS): string | undefined {
  return AMD_ROOT_PEMS[file];
}
