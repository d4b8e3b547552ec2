import { inputError } from '@joinguard/core';
import { TEE_KINDS, type AppraisalClaims } from './claims.js';
import { pointerToPath } from './parse.js';
import { compileSchema, type SchemaValidator } from './validator.js';

// Claims normally come from the verifier's own mapping; files given to the CLI (learn, dry runs) are
// checked against this schema first so that evaluation only ever sees the shapes it was written for.

const hex = { type: 'string', pattern: '^([0-9a-fA-F]{2})*$', maxLength: 1024 };
// Fixed-size fields have their size from the specifications, so that learned values fit the policy schema.
const hexN = (bytes: number) => ({ type: 'string', pattern: `^[0-9a-fA-F]{${bytes * 2}}$` });
const pcrBank = (bytes: number) => ({ type: 'object', propertyNames: { pattern: '^([0-9]|1[0-9]|2[0-3])$' }, additionalProperties: hexN(bytes) });
const u8 = { type: 'integer', minimum: 0, maximum: 255 };
const eventRef = { eventIndex: { type: 'integer', minimum: 0 }, pcr: { type: 'integer', minimum: 0, maximum: 31 } };
const str = { type: 'string', maxLength: 65536 };
const hexList = { type: 'array', items: hex, maxItems: 4096 };
const efi = { type: 'object', required: ['certSha256', 'hashes'], properties: { certSha256: { type: 'array', items: hexN(32), maxItems: 4096 }, hashes: hexList, ...eventRef } };
const strings = { type: 'array', maxItems: 256, items: { type: 'object', required: ['value'], properties: { value: str, ...eventRef } } };

export const claimsSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://joinguard.io/schemas/appraisal-claims.json',
  type: 'object',
  required: ['tee'],
  properties: {
    tee: { enum: [...TEE_KINDS] },
    snp: {
      type: 'object',
      required: ['policy', 'vmpl', 'reportedTcb', 'measurement', 'hostData', 'idKeyDigest', 'authorKeyDigest'],
      properties: {
        version: { type: 'integer' },
        guestSvn: { type: 'integer' },
        policy: {
          type: 'object',
          required: ['smt', 'migrateMa', 'debug', 'singleSocket'],
          properties: { smt: { type: 'boolean' }, migrateMa: { type: 'boolean' }, debug: { type: 'boolean' }, singleSocket: { type: 'boolean' } },
        },
        vmpl: { type: 'integer', minimum: 0, maximum: 3 },
        reportedTcb: {
          type: 'object',
          required: ['bootloader', 'tee', 'snp', 'microcode'],
          properties: { bootloader: u8, tee: u8, snp: u8, microcode: u8, fmc: u8 },
        },
        measurement: hexN(48),
        hostData: hexN(32),
        idKeyDigest: hexN(48),
        authorKeyDigest: hexN(48),
        reportData: hexN(64),
      },
    },
    tdx: {
      type: 'object',
      required: ['tcbStatus', 'advisoryIds', 'tdAttributes', 'mrTd', 'mrConfigId', 'mrOwner', 'mrOwnerConfig', 'rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'],
      properties: {
        tcbStatus: { type: 'string', maxLength: 64 },
        advisoryIds: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 1000 },
        tdAttributes: hexN(8),
        mrTd: hexN(48),
        mrConfigId: hexN(48),
        mrOwner: hexN(48),
        mrOwnerConfig: hexN(48),
        rtmr0: hexN(48),
        rtmr1: hexN(48),
        rtmr2: hexN(48),
        rtmr3: hexN(48),
      },
    },
    tpm: {
      type: 'object',
      required: ['banks', 'pcrs'],
      properties: {
        banks: { type: 'array', items: { type: 'string', maxLength: 16 }, maxItems: 8 },
        pcrs: {
          type: 'object',
          additionalProperties: false,
          properties: { sha1: pcrBank(20), sha256: pcrBank(32), sha384: pcrBank(48), sha512: pcrBank(64) },
        },
      },
    },
    boot: {
      type: 'object',
      required: ['bootApps'],
      properties: {
        secureBoot: { type: 'boolean' },
        secureBootEvent: { type: 'object', properties: eventRef },
        pk: efi,
        kek: efi,
        db: efi,
        dbx: efi,
        bootApps: {
          type: 'array',
          maxItems: 4096,
          items: { type: 'object', properties: { digestSha256: hexN(32), path: str, ...eventRef } },
        },
        kernelCmdline: strings,
        grubCommands: strings,
        unverifiedEvents: {
          type: 'array',
          maxItems: 10000,
          items: { type: 'object', required: ['type'], properties: { type: { type: 'string', maxLength: 128 }, reason: str, ...eventRef } },
        },
      },
    },
  },
} as const;

let compiled: SchemaValidator | undefined;

/** Checks a plain value against the claims schema; throws POLICY_CLAIMS_INVALID with JSONPaths. */
export function parseClaims(doc: unknown, what = 'claims'): AppraisalClaims {
  compiled ??= compileSchema(claimsSchema);
  const violations = compiled(doc);
  if (violations.length === 0) return doc as AppraisalClaims;
  const errors = violations.map((e) => ({ path: pointerToPath(e.pointer, doc), message: e.message }));
  throw inputError('POLICY_CLAIMS_INVALID', `${what} are not valid appraisal claims: ${errors[0]!.path} ${errors[0]!.message}`, { errors });
}
