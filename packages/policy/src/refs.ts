import type { ReferenceValue } from './types.js';

/**
 * Reference values are addressed by a key naming the claim they constrain: `snp.measurement`,
 * `tdx.rtmr1`, `boot.bootApps`, `boot.db.certSha256`, `boot.kernelCmdline`, `pcrs.sha256.7`.
 */
export type ReferenceKey = string;

export type Validity = 'active' | 'expired' | 'notYetValid';

export interface ReferenceRef {
  id: string;
  version: string;
}

const SECTIONS = {
  snp: ['measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest'],
  tdx: ['mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'],
} as const;

const EFI_VARIABLES = ['pk', 'kek', 'db', 'dbx'] as const;

/** Every (key, values) pair a reference value provides. Kernel command lines stay as written; hex is lowercased. */
export function referenceEntries(ref: ReferenceValue): Array<[ReferenceKey, string[]]> {
  const out: Array<[ReferenceKey, string[]]> = [];
  const hexes = (v: string[] | undefined) => (v ?? []).map((x) => x.toLowerCase());
  for (const section of ['snp', 'tdx'] as const) {
    const s = ref[section] as Record<string, string[] | undefined> | undefined;
    if (!s) continue;
    for (const field of SECTIONS[section]) if (s[field] !== undefined) out.push([`${section}.${field}`, hexes(s[field])]);
  }
  const b = ref.boot;
  if (b) {
    if (b.bootApps !== undefined) out.push(['boot.bootApps', hexes(b.bootApps)]);
    for (const v of EFI_VARIABLES) {
      const e = b[v];
      if (!e) continue;
      if (e.certSha256 !== undefined) out.push([`boot.${v}.certSha256`, hexes(e.certSha256)]);
      if (e.hashes !== undefined) out.push([`boot.${v}.hashes`, hexes(e.hashes)]);
    }
    if (b.kernelCmdline !== undefined) out.push(['boot.kernelCmdline', [...b.kernelCmdline]]);
  }
  for (const [bank, byIndex] of Object.entries(ref.pcrs ?? {})) {
    for (const [index, values] of Object.entries(byIndex)) out.push([`pcrs.${bank}.${index}`, hexes(values)]);
  }
  return out;
}

/**
 * Active from notBefore (inclusive) until expires (exclusive). checkPolicy refuses unreadable dates; should
 * one reach here anyway, the reference value is treated as not valid rather than valid forever.
 */
export function validity(ref: ReferenceValue, now: Date): Validity {
  const t = now.getTime();
  if (ref.notBefore !== undefined) {
    const nb = Date.parse(ref.notBefore);
    if (Number.isNaN(nb) || t < nb) return 'notYetValid';
  }
  if (ref.expires !== undefined) {
    const ex = Date.parse(ref.expires);
    if (Number.isNaN(ex) || t >= ex) return 'expired';
  }
  return 'active';
}

export interface Lookup {
  /** The first active reference value holding the value. */
  active?: ReferenceValue;
  /** A reference value holding the value outside its validity, when no active one does. */
  inactive?: { ref: ReferenceValue; validity: Validity };
}

/** The reference values of a policy, indexed by key and evaluated at one instant. */
export class ReferenceIndex {
  private readonly byKey = new Map<ReferenceKey, Array<{ ref: ReferenceValue; values: Set<string>; validity: Validity }>>();

  constructor(refs: readonly ReferenceValue[], now: Date) {
    for (const ref of refs) {
      const v = validity(ref, now);
      for (const [key, values] of referenceEntries(ref)) {
        let list = this.byKey.get(key);
        if (!list) this.byKey.set(key, (list = []));
        list.push({ ref, values: new Set(values), validity: v });
      }
    }
  }

  /** Whether any reference value (active or not) constrains this key: then the rule is enforced. */
  has(key: ReferenceKey): boolean {
    return this.byKey.has(key);
  }

  keys(): ReferenceKey[] {
    return [...this.byKey.keys()];
  }

  lookup(key: ReferenceKey, value: string): Lookup {
    const v = key === 'boot.kernelCmdline' ? value : value.toLowerCase();
    const out: Lookup = {};
    for (const e of this.byKey.get(key) ?? []) {
      if (!e.values.has(v)) continue;
      if (e.validity === 'active') return { active: e.ref };
      out.inactive ??= { ref: e.ref, validity: e.validity };
    }
    return out;
  }

  /** The values accepted now, for `expected` in results. */
  activeValues(key: ReferenceKey): string[] {
    const out = new Set<string>();
    for (const e of this.byKey.get(key) ?? []) if (e.validity === 'active') for (const x of e.values) out.add(x);
    return [...out];
  }

  /** Active reference values providing the key, as id@version. */
  activeRefs(key: ReferenceKey): ReferenceRef[] {
    return (this.byKey.get(key) ?? []).filter((e) => e.validity === 'active').map((e) => refOf(e.ref));
  }

  /** Every (reference value, validity) providing the key. */
  providers(key: ReferenceKey): Array<{ ref: ReferenceValue; validity: Validity }> {
    return (this.byKey.get(key) ?? []).map((e) => ({ ref: e.ref, validity: e.validity }));
  }
}

export function refOf(ref: ReferenceValue): ReferenceRef {
  return { id: ref.id, version: ref.version };
}
