import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../src/index.js';

describe('BoundedMap', () => {
  it('keeps at most maxEntries, forgetting the oldest first; setting a key again makes it the newest', () => {
    const m = new BoundedMap<string, number>(3);
    for (const k of ['a', 'b', 'c']) m.set(k, k.charCodeAt(0));
    m.set('a', 1);
    m.set('d', 4);
    expect(m.size).toBe(3);
    expect(m.has('b')).toBe(false);
    expect([...m.values()]).toEqual([99, 1, 4]);
    expect(m.get('a')).toBe(1);
  });

  it('keeps the total cost within maxCost, and no entry that alone costs more', () => {
    const m = new BoundedMap<string, string>(100, 10);
    m.set('a', 'x', 4);
    m.set('b', 'y', 4);
    m.set('c', 'z', 4);
    expect([m.has('a'), m.has('b'), m.has('c')]).toEqual([false, true, true]);
    expect(m.cost).toBe(8);
    m.set('huge', 'w', 11);
    expect(m.has('huge')).toBe(false);
    expect(m.cost).toBe(8);
    expect(m.delete('b')).toBe(true);
    expect(m.delete('b')).toBe(false);
    expect(m.cost).toBe(4);
    m.set('c', 'z2', 1);
    expect(m.cost).toBe(1);
    expect(m.get('c')).toBe('z2');
  });
});
