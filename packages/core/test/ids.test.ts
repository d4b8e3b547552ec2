import { describe, expect, it } from 'vitest';
import { uuidV7 } from '../src/index.js';

describe('uuidV7', () => {
  it('is an RFC 9562 version 7 UUID whose first 48 bits are the time in milliseconds', () => {
    const t = Date.UTC(2026, 11, 2, 8, 0, 0, 123);
    const id = uuidV7(t);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(t);
  });

  it('ids of later milliseconds sort after earlier ones, and 20,000 ids (more than one random pool) are distinct', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => uuidV7(1_700_000_000_000 + Math.floor(i / 7)));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 7; i < ids.length; i += 7) expect(ids[i - 7]! < ids[i]!).toBe(true);
    // The random part varies (not a counter or a constant).
    expect(new Set(ids.slice(0, 7).map((id) => id.slice(15))).size).toBe(7);
  });
});
