import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzzFixtures, fuzzInput, fuzzProperty } from './fuzz-props.js';

describe('hostile input (bounded; scripts/fuzz-policy.ts runs the long version)', () => {
  const fx = fuzzFixtures();

  it('policies and claims never crash reading or evaluation', () => {
    const kinds: Record<string, number> = {};
    fc.assert(
      fc.property(fuzzInput(fx), (input) => {
        kinds[input.kind] = (kinds[input.kind] ?? 0) + 1;
        return fuzzProperty(fx, input);
      }),
      { numRuns: 600 },
    );
    expect(Object.keys(kinds).sort()).toEqual(['claims', 'policy-doc', 'policy-text']);
  });

  it('the property can fail: a claims value that breaks evaluate is reported', () => {
    // An unreadable policy text must throw only input errors; a wrong `now` is an input error too.
    expect(fuzzProperty(fx, { kind: 'policy-text', text: 'tee: [' })).toBe(true);
    const broken = { ...fx.example, tee: null } as unknown as typeof fx.example;
    expect(() => fuzzProperty({ ...fx, example: broken }, { kind: 'claims', doc: fx.claims[0] })).toThrow(TypeError);
  });
});
