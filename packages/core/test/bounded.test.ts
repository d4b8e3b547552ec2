import { describe, expect, it } from 'vitest';
import { BoundedMap, deepFreeze } from '../src/index.js';

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

  it('clear forgets every entry and its cost', () => {
    const m = new BoundedMap<string, number>(4, 100);
    m.set('a', 1, 10);
    m.set('b', 2, 20);
    m.clear();
    expect([m.size, m.cost, m.get('a')]).toEqual([0, 0, undefined]);
    m.set('c', 3, 100);
    expect(m.has('c')).toBe(true);
  });
});

describe('deepFreeze', () => {
  it('freezes objects and arrays all the way down, leaves typed arrays and primitives as they are', () => {
    const bytes = new Uint8Array([1, 2]);
    const v = deepFreeze({ a: { b: [{ c: 1 }, 'x'] }, bytes, n: null });
    expect(Object.isFrozen(v)).toBe(true);
    expect(Object.isFrozen(v.a)).toBe(true);
    expect(Object.isFrozen(v.a.b)).toBe(true);
    expect(Object.isFrozen(v.a.b[0])).toBe(true);
    expect(() => {
      (v.a.b[0] as { c: number }).c = 2;
    }).toThrow(TypeError);
    expect(() => (v.a.b as unknown[]).push(1)).toThrow(TypeError);
    expect(v.bytes).toBe(bytes);
    bytes[0] = 9;
    expect(v.bytes[0]).toBe(9);
    expect(deepFreeze('s')).toBe('s');
  });
});
