import { describe, expect, it } from 'vitest';
import { isJoinguardError, pemDecode } from '../src/index.js';

const der = Buffer.from('3003020101', 'hex');
const block = (body: string) => `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
const o = { code: 'X_PEM', what: 'test text' };

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isJoinguardError(e) ? e.code : 'foreign';
  }
  return undefined;
}

describe('pemDecode', () => {
  it('decodes each block in order, whitespace and line breaks in a body allowed', () => {
    const b64 = der.toString('base64');
    const out = pemDecode(block(b64) + 'between\n' + block(`${b64.slice(0, 3)}\r\n ${b64.slice(3)}`), 'CERTIFICATE', o);
    expect(out.map((b) => Buffer.from(b).toString('hex'))).toEqual(['3003020101', '3003020101']);
    expect(pemDecode('no blocks', 'CERTIFICATE', o)).toEqual([]);
  });

  it('refuses a body Node would decode around: a stray character, bad padding, a short length, an empty body', () => {
    const b64 = der.toString('base64');
    for (const body of [b64.slice(0, 2) + '!' + b64.slice(2), b64.replace(/=*$/, '') + '=A', b64.replace(/=+$/, ''), '', '====']) {
      expect(codeOf(() => pemDecode(block(body), 'CERTIFICATE', o)), JSON.stringify(body)).toBe('X_PEM');
    }
  });

  it('with onlyBlocks, refuses text outside the blocks but not whitespace', () => {
    const text = block(der.toString('base64'));
    expect(pemDecode(`\n  ${text}\n${text}`, 'CERTIFICATE', { ...o, onlyBlocks: true })).toHaveLength(2);
    expect(codeOf(() => pemDecode(`${text}x`, 'CERTIFICATE', { ...o, onlyBlocks: true }))).toBe('X_PEM');
    expect(codeOf(() => pemDecode('x', 'CERTIFICATE', { ...o, onlyBlocks: true }))).toBe('X_PEM');
  });
});
