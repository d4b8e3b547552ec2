import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPolicy, claimsSchema, defaultPolicy, policyDigest, policySchema, loadPolicy, parsePolicy, parsePolicyDocument, schemaErrors, MAX_POLICY_BYTES, type Policy } from '../src/index.js';
import { basePolicy, h, readExample, thrown } from './fixtures.js';

const now = new Date('2026-11-23T10:00:00Z');


describe('schema validation', () => {
  it('accepts the example policy and the default policy', () => {
    const p = parsePolicy(readExample('worker-pool.yaml'));
    expect(p.name).toBe('worker-pool');
    expect(p.referenceValues?.map((r) => `${r.id}@${r.version}`)).toContain('rhcos-boot@4.16.8');
    expect(checkPolicy(p, now).errors).toEqual([]);
    expect(schemaErrors(defaultPolicy())).toEqual([]);
    expect(checkPolicy(defaultPolicy(), now)).toEqual({ errors: [], warnings: [] });
  });

  it('examples/default-strict.yaml is the default policy', () => {
    const p = parsePolicy(readExample('default-strict.yaml'));
    expect(p).toEqual(defaultPolicy());
    expect(policyDigest(p)).toBe(policyDigest(defaultPolicy()));
  });

  it('parses JSON as well as YAML to the same policy', () => {
    const p = parsePolicy(readExample('worker-pool.yaml'));
    expect(parsePolicy(JSON.stringify(p))).toEqual(p);
  });

  it('reports every schema error with its JSONPath', () => {
    const doc = {
      ...basePolicy(),
      tee: { allowed: ['sgx'] },
      snp: { minimumTcb: { microcode: -1 }, guestPolicy: { allowDebug: 'no' } },
      tdx: { allowedTcbStatuses: ['Fine'] },
      surplus: 1,
      referenceValues: [{ id: 'os', version: '1', snp: { measurement: ['abcd'] }, pcrs: { md5: {}, sha256: { '24': [h(0, 32)] } }, expires: 'tomorrow' }],
    };
    const e = thrown(() => parsePolicy(doc));
    expect(e.code).toBe('POLICY_SCHEMA');
    expect(e.kind).toBe('input');
    const paths = (e.details.errors as Array<{ path: string }>).map((x) => x.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '$.tee.allowed[0]',
        '$.snp.minimumTcb.microcode',
        '$.snp.guestPolicy.allowDebug',
        '$.tdx.allowedTcbStatuses[0]',
        '$.surplus',
        '$.referenceValues[0].snp.measurement[0]',
        '$.referenceValues[0].pcrs.md5',
        '$.referenceValues[0].pcrs.sha256["24"]',
        '$.referenceValues[0].expires',
      ]),
    );
  });

  it('requires the header fields', () => {
    const e = thrown(() => parsePolicy({ tee: { allowed: ['snp'] } }));
    const messages = (e.details.errors as Array<{ message: string }>).map((x) => x.message);
    expect(messages).toEqual(expect.arrayContaining(['must have property apiVersion', 'must have property kind', 'must have property name']));
  });

  it('refuses text that is not YAML, several documents, and oversized input', () => {
    expect(thrown(() => parsePolicyDocument('a: [1, 2')).code).toBe('POLICY_INVALID');
    expect(thrown(() => parsePolicyDocument('a: 1\n---\nb: 2\n')).code).toBe('POLICY_INVALID');
    expect(thrown(() => parsePolicyDocument('a: 1\na: 2\n')).code).toBe('POLICY_INVALID');
    expect(thrown(() => parsePolicyDocument('#'.repeat(MAX_POLICY_BYTES + 1))).code).toBe('POLICY_INVALID');
  });

  it('refuses alias bombs instead of expanding them', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const e = thrown(() => parsePolicyDocument(lines.join('\n')));
    expect(e.code).toBe('POLICY_INVALID');
  });
});

describe('published schema files', () => {
  it('schema/*.json are the schemas the code validates with', () => {
    const dir = join(import.meta.dirname, '..', 'schema');
    expect(JSON.parse(readFileSync(join(dir, 'appraisal-policy.schema.json'), 'utf8'))).toEqual(policySchema);
    expect(JSON.parse(readFileSync(join(dir, 'appraisal-claims.schema.json'), 'utf8'))).toEqual(claimsSchema);
  });
});

describe('semantic checks', () => {
  const check = (p: Policy) => checkPolicy(p, now);
  const codes = (issues: Array<{ code: string }>) => issues.map((i) => i.code);

  it('finds regexes that do not compile, with their path', () => {
    const r = check(basePolicy({ boot: { kernelCmdline: { required: ['ok', '(unclosed'] }, grubCommands: { forbidden: ['[z-a]'] } } }));
    expect(r.errors.map((e) => [e.path, e.code])).toEqual([
      ['$.boot.kernelCmdline.required[1]', 'POLICY_BAD_REGEX'],
      ['$.boot.grubCommands.forbidden[0]', 'POLICY_BAD_REGEX'],
    ]);
  });

  it('refuses patterns that can backtrack exponentially, with their path, in checkPolicy and loadPolicy', () => {
    // Both take seconds on a few dozen characters of a crafted kernel command line (exponential in its length).
    const unsafe = ['^(\\S+\\s*)*ro$', '(a+)+b', '(a|a)*b', '(\\w|\\d)+$', '(^| )(\\S|\\w)+ ro$'];
    const r = check(basePolicy({ boot: { kernelCmdline: { required: ['(^| )ro( |$)', unsafe[0]!], forbidden: [unsafe[1]!] }, grubCommands: { forbidden: ['(\\w+\\s?)*$'] } } }));
    expect(r.errors.map((e) => [e.path, e.code])).toEqual([
      ['$.boot.kernelCmdline.required[1]', 'POLICY_UNSAFE_REGEX'],
      ['$.boot.kernelCmdline.forbidden[0]', 'POLICY_UNSAFE_REGEX'],
      ['$.boot.grubCommands.forbidden[0]', 'POLICY_UNSAFE_REGEX'],
    ]);
    expect(r.errors[0]!.message).toContain(JSON.stringify(unsafe[0]));
    expect(r.errors[0]!.message).toContain('backtrack exponentially');
    for (const p of unsafe) {
      const e = thrown(() => loadPolicy(JSON.stringify(basePolicy({ boot: { kernelCmdline: { forbidden: [p] } } })), now));
      expect(e.code).toBe('POLICY_SEMANTIC');
      expect(e.message).toContain('$.boot.kernelCmdline.forbidden[0]');
      expect(e.details.errors).toEqual([expect.objectContaining({ path: '$.boot.kernelCmdline.forbidden[0]', code: 'POLICY_UNSAFE_REGEX' })]);
    }
  });

  it('accepts the ordinary patterns policies use, lookbehind included', () => {
    const ordinary = [
      '(^| )ro( |$)', 'console=ttyS0', '(^| )init=', '^set debug=', 'init=', 'systemd\\.debug-shell', 'lockdown=integrity', 'x', '.',
      '(^| )ostree=/ostree/boot\\.[01]/rhcos/', '(^| )(init|rd\\.break|systemd\\.debug-shell)(=| |$)', '(^| )module\\.sig_enforce=0( |$)',
      '(?<!\\S)ro(?!\\S)', '(?<=^| )quiet( |$)', '^linux /vmlinuz-[0-9.]+ ', 'console=ttyS0(,[0-9]+|)( |$)',
      // `?` matches once at most: it does not make a group repeat.
      '(,[0-9]+)?', 'console=ttyS[0-9]+(,[0-9]+n8)?( |$)', '(?:foo=\\S+ )?ro', '(^| )(ro|rw)?( |$)',
    ];
    expect(check(basePolicy({ boot: { kernelCmdline: { required: ordinary, forbidden: ordinary }, grubCommands: { forbidden: ordinary } } })).errors).toEqual([]);
    // A lookbehind is analysed like any group: nested quantifiers inside one are still refused.
    expect(codes(check(basePolicy({ boot: { kernelCmdline: { forbidden: ['(?<=(a+)+)b'] } } })).errors)).toEqual(['POLICY_UNSAFE_REGEX']);
  });

  it('finds minimum TCB values out of the one-byte range', () => {
    const r = check(basePolicy({ snp: { minimumTcb: { bootloader: 3, microcode: 256 } } }));
    expect(r.errors).toEqual([expect.objectContaining({ path: '$.snp.minimumTcb.microcode', code: 'POLICY_TCB_OUT_OF_RANGE' })]);
    expect(check(basePolicy({ snp: { minimumTcb: { microcode: 255 } } })).errors).toEqual([]);
  });

  it('finds expired-only reference sets but accepts one expired beside an active one', () => {
    const old = { id: 'os', version: 'N', expires: '2026-06-01T00:00:00Z', snp: { measurement: [h(1, 48)] } };
    const next = { id: 'os', version: 'N+1', snp: { measurement: [h(2, 48)] } };
    const onlyOld = check(basePolicy({ referenceValues: [old] }));
    expect(onlyOld.errors).toEqual([expect.objectContaining({ code: 'POLICY_REFERENCE_EXPIRED', path: '$.referenceValues[0]' })]);
    expect(onlyOld.errors[0]!.message).toContain('snp.measurement');
    const both = check(basePolicy({ referenceValues: [old, next] }));
    expect(both.errors).toEqual([]);
    expect(codes(both.warnings)).toEqual(['POLICY_REFERENCE_EXPIRED']);
  });

  it('finds bad dates, reversed validity, duplicate ids and PCR values of the wrong length', () => {
    const r = check(
      basePolicy({
        tpm: { requiredBanks: ['sha256'] },
        referenceValues: [
          { id: 'a', version: '1', expires: '2026-02-30T00:00:00Z' },
          { id: 'b', version: '1', notBefore: '2027-01-01T00:00:00Z', expires: '2026-12-01T00:00:00Z' },
          { id: 'b', version: '1' },
          { id: 'c', version: '1', pcrs: { sha256: { '7': [h(7, 20)] }, sha1: { '0': [h(0, 20)] } } },
        ],
      }),
    );
    expect(r.errors.map((e) => [e.path, e.code])).toEqual([
      ['$.referenceValues[0].expires', 'POLICY_BAD_DATE'],
      ['$.referenceValues[1].expires', 'POLICY_BAD_DATE'],
      ['$.referenceValues[2]', 'POLICY_DUPLICATE_REFERENCE'],
      ['$.referenceValues[3].pcrs.sha256["7"][0]', 'POLICY_BAD_PCR_VALUE'],
    ]);
    expect(codes(r.warnings)).toContain('POLICY_BANK_NOT_REQUIRED');
  });

  it('compares a reference value\'s id and version as a pair: ids may contain "@"', () => {
    const refs = [
      { id: 'a@b', version: 'c', snp: { measurement: [h(1, 48)] } },
      { id: 'a', version: 'b@c', snp: { measurement: [h(2, 48)] } },
    ];
    expect(check(basePolicy({ referenceValues: refs })).errors).toEqual([]);
    const again = check(basePolicy({ referenceValues: [...refs, { id: 'a', version: 'b@c' }] }));
    expect(again.errors.map((e) => [e.path, e.code])).toEqual([['$.referenceValues[2]', 'POLICY_DUPLICATE_REFERENCE']]);
    expect(again.errors[0]!.message).toContain('$.referenceValues[1]');
  });

  it('warns about weakened settings and sections no allowed TEE uses', () => {
    const r = check(basePolicy({ tee: { allowed: ['tdx'] }, snp: { guestPolicy: { allowDebug: true } }, tdx: { allowDebug: true } }));
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => w.path)).toEqual(['$.snp', '$.snp.guestPolicy.allowDebug', '$.tdx.allowDebug']);
  });

  it('loadPolicy throws POLICY_SEMANTIC with every error and warning', () => {
    const text = JSON.stringify(basePolicy({ boot: { kernelCmdline: { forbidden: ['('] } }, snp: { minimumTcb: { snp: 300 } } }));
    const e = thrown(() => loadPolicy(text, now));
    expect(e.code).toBe('POLICY_SEMANTIC');
    expect(e.kind).toBe('input');
    expect((e.details.errors as unknown[]).length).toBe(2);
    expect(loadPolicy(readExample('worker-pool.yaml'), now).policy.name).toBe('worker-pool');
  });
});
