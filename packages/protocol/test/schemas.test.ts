import { randomBytes } from 'node:crypto';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { Ajv } from 'ajv';
import {
  LIMITS,
  SCHEMAS,
  auditRecordSchema,
  evidenceSchema,
  issueChallenge,
  nodeStateSchema,
  recordPageSchema,
  recordQuerySchema,
  runtimeDataSchema,
  signedRecordSchema,
} from '../src/index.js';
import type { AuditRecord, Evidence, NodeState, RecordPage, SignedRecord } from '../src/index.js';

// Ajv 8 in strict mode, as fastify's compiler uses it: any unknown keyword or ambiguous type is an error.
const ajv = new Ajv({ strict: true, allErrors: true });

const b64 = (n: number) => randomBytes(n).toString('base64');

function evidence(): Evidence {
  return {
    nonce: issueChallenge(new Uint8Array(32).fill(1), new Date()).nonce,
    tee: 'snp',
    runtimeData: {
      teeKey: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
      nodeName: 'worker-0',
      purpose: 'join',
      kubeletKeySha256: '0'.repeat(64),
    },
    hardware: { report: b64(1184), certs: { vcek: b64(1300) } },
    tpm: { quote: b64(145), signature: b64(70), pcrs: { sha256: { '0': 'ab'.repeat(32), '7': 'cd'.repeat(32) } }, akPublic: b64(90) },
    eventLog: b64(30000),
  };
}

describe('JSON Schemas', () => {
  it('all compile under Ajv strict mode', () => {
    for (const [name, s] of Object.entries(SCHEMAS)) expect(() => ajv.compile(s), name).not.toThrow();
  });

  it('accept well-formed evidence for every tee', () => {
    const v = ajv.compile(evidenceSchema);
    for (const tee of ['snp', 'tdx', 'azure-snp-vtpm', 'azure-tdx-vtpm'] as const) {
      expect(v({ ...evidence(), tee }), JSON.stringify(v.errors)).toBe(true);
    }
    const x = evidence();
    x.runtimeData.teeKey = { kty: 'OKP', crv: 'X25519', x: 'hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo' };
    expect(v(x), JSON.stringify(v.errors)).toBe(true);
  });

  it('refuse oversized, private, unknown and malformed input', () => {
    const v = ajv.compile(evidenceSchema);
    const cases: [string, (e: Evidence) => void][] = [
      ['report over 64 KiB', (e) => (e.hardware.report = b64(LIMITS.reportBytes + 3))],
      ['event log over 4 MiB', (e) => (e.eventLog = b64(LIMITS.eventLogBytes + 3))],
      ['private teeKey', (e) => ((e.runtimeData.teeKey as unknown as Record<string, string>).d = 'x'.repeat(43))],
      ['unknown tee', (e) => ((e as unknown as Record<string, string>).tee = 'sgx')],
      ['unknown field', (e) => ((e as unknown as Record<string, unknown>).extra = 1)],
      ['bad nonce alphabet', (e) => (e.nonce = '+'.repeat(96))],
      ['bad node name', (e) => (e.runtimeData.nodeName = 'Worker_0')],
      ['bad purpose', (e) => ((e.runtimeData as unknown as Record<string, string>).purpose = 'steal')],
      ['pcr index 24', (e) => (e.tpm.pcrs = { sha256: { '24': 'ab'.repeat(32) } })],
      ['short pcr', (e) => (e.tpm.pcrs = { sha256: { '0': 'ab' } })],
      ['non-base64 report', (e) => (e.hardware.report = 'not base64!')],
      ['missing tpm', (e) => delete (e as Partial<Evidence>).tpm],
    ];
    for (const [what, mutate] of cases) {
      const e = evidence();
      mutate(e);
      expect(v(e), what).toBe(false);
    }
    expect(ajv.validate(runtimeDataSchema, evidence().runtimeData)).toBe(true);
  });

  it('a 64 KiB report is at the limit, not over it', () => {
    const v = ajv.compile(evidenceSchema);
    const e = evidence();
    e.hardware.report = b64(LIMITS.reportBytes);
    expect(v(e)).toBe(true);
  });

  it('record queries take only known filters', () => {
    const v = ajv.compile(recordQuerySchema);
    expect(v({ node: 'worker-0', verdict: 'fail', limit: 50, cursor: 'MTIz' })).toBe(true);
    expect(v({ limit: 5000 })).toBe(false);
    expect(v({ sql: '1=1' })).toBe(false);
  });
});

describe('reply schemas', () => {
  // The verifier's reply serializer writes only the members a schema lists: a member added to one of these
  // types must be added to its schema too, or replies would lose it (the type check fails until it is).
  it('list every member of their type, and no other', () => {
    expectTypeOf<keyof typeof nodeStateSchema.properties>().toEqualTypeOf<keyof NodeState>();
    expectTypeOf<keyof typeof auditRecordSchema.properties>().toEqualTypeOf<keyof AuditRecord>();
    expectTypeOf<keyof typeof signedRecordSchema.properties>().toEqualTypeOf<keyof SignedRecord>();
    expectTypeOf<keyof typeof recordPageSchema.properties>().toEqualTypeOf<keyof RecordPage>();
    expect(nodeStateSchema.additionalProperties).toBe(false);
  });

  it('say where a JWKS and its keys are open, so that no member of a key is dropped', () => {
    const keys = SCHEMAS.Jwks.properties.keys;
    expect(SCHEMAS.Jwks.additionalProperties).toBe(true);
    expect(keys.items.additionalProperties).toBe(true);
    const v = ajv.compile(SCHEMAS.Jwks);
    expect(v({ keys: [{ kty: 'RSA', kid: 'r', n: 'AQAB', e: 'AQAB', x5c: ['MIIB'], 'x5t#S256': 'x' }], extension: 1 })).toBe(true);
  });
});

describe('JWKS schema', () => {
  it('refuses private members', () => {
    const v = ajv.compile(SCHEMAS.Jwks);
    expect(v({ keys: [{ kty: 'EC', kid: 'a', crv: 'P-256', x: 'x', y: 'y' }] })).toBe(true);
    expect(v({ keys: [{ kty: 'EC', kid: 'a', crv: 'P-256', x: 'x', y: 'y', d: 'secret' }] })).toBe(false);
    expect(v({ keys: [{ kty: 'oct', kid: 'a', k: 'secret' }] })).toBe(false);
  });

  it('holds every key ever used, however many rotations there were', () => {
    const v = ajv.compile(SCHEMAS.Jwks);
    expect(v({ keys: Array.from({ length: 200 }, (_, i) => ({ kty: 'EC', kid: `k${i}`, crv: 'P-256', x: 'x', y: 'y' })) })).toBe(true);
  });
});

describe('schemas under fastify-style Ajv options', () => {
  it('removeAdditional never changes valid evidence (the binding digest covers runtimeData)', () => {
    const fastifyLike = new Ajv({ removeAdditional: true, useDefaults: true, coerceTypes: 'array', allErrors: false });
    const v = fastifyLike.compile(evidenceSchema);
    for (const teeKey of [
      { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' },
      { kty: 'OKP', crv: 'X25519', x: 'hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo' },
    ] as const) {
      const e = evidence();
      e.runtimeData.teeKey = { ...teeKey };
      const before = JSON.stringify(e);
      expect(v(e), JSON.stringify(v.errors)).toBe(true);
      expect(JSON.stringify(e)).toBe(before);
    }
  });
});
