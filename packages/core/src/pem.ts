import { reject } from './errors.js';

const BODY_RE = /^[A-Za-z0-9+/]*={0,2}$/;
/** label → the global pattern of its blocks (matchAll and replace start from the beginning each time) */
const blockRes = new Map<string, RegExp>();

export interface PemOptions {
  /** error code for text that is not PEM */
  code: string;
  /** what the text is, for the message */
  what: string;
  /** refuse anything but whitespace outside the blocks (evidence); otherwise text between blocks is ignored */
  onlyBlocks?: boolean;
}

/**
 * The DER of each PEM block labelled `label`, in order ([] when there is none). Strict where Node's base64
 * decoder is not: a body that holds anything but base64 characters and whitespace, or whose padding or length
 * is wrong, is refused rather than decoded around (an inserted character would otherwise vanish silently).
 */
export function pemDecode(text: string, label: string, o: PemOptions): Uint8Array[] {
  let re = blockRes.get(label);
  if (!re) blockRes.set(label, (re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g')));
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(re)) {
    const body = m[1]!.replace(/[ \t\r\n]+/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !BODY_RE.test(body)) {
      throw reject(o.code, `${o.what}: PEM ${label} block ${out.length} is not base64`, { block: out.length });
    }
    out.push(new Uint8Array(Buffer.from(body, 'base64')));
  }
  if (o.onlyBlocks) {
    const rest = text.replace(re, '').replace(/[ \t\r\n]+/g, '');
    if (rest.length > 0) throw reject(o.code, `${o.what} holds ${rest.length} characters outside its PEM ${label} blocks`, { extra: rest.length });
  }
  return out;
}
