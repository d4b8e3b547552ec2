import { TEE_KINDS } from './claims.js';
import { POLICY_API_VERSION, POLICY_KIND, TDX_TCB_STATUSES } from './types.js';

// JSON Schema (draft-07) of an appraisal policy. Structure only: what needs more than one field to judge
// (regexes that compile, expiry dates, value lengths per PCR bank, expired-only reference sets) is
// checked by checkPolicy.

const hex = (bytes?: number) =>
  bytes === undefined
    ? { type: 'string', pattern: '^([0-9a-fA-F]{2})*$', maxLength: 1024 }
    : { type: 'string', pattern: `^[0-9a-fA-F]{${bytes * 2}}$` };

const hexList = (bytes?: number) => ({ type: 'array', items: hex(bytes), maxItems: 4096, uniqueItems: true });

const patternList = { type: 'array', items: { type: 'string', minLength: 1, maxLength: 1024 }, maxItems: 256 };

// RFC 3339 date-time with an explicit offset; the calendar check is in checkPolicy.
const dateTime = {
  type: 'string',
  pattern: '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([Zz]|[+-]\\d{2}:\\d{2})$',
};

const spl = { type: 'integer', minimum: 0 };

const efiReference = {
  type: 'object',
  additionalProperties: false,
  properties: { certSha256: hexList(32), hashes: hexList() },
};

const identifier = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$' };

export const policySchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://joinguard.io/schemas/appraisal-policy.json',
  title: 'joinguard appraisal policy',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'name', 'tee'],
  properties: {
    apiVersion: { const: POLICY_API_VERSION },
    kind: { const: POLICY_KIND },
    name: identifier,
    nodePool: identifier,
    description: { type: 'string', maxLength: 4096 },
    tee: {
      type: 'object',
      additionalProperties: false,
      required: ['allowed'],
      properties: {
        allowed: { type: 'array', items: { enum: [...TEE_KINDS] }, minItems: 1, uniqueItems: true },
      },
    },
    snp: {
      type: 'object',
      additionalProperties: false,
      properties: {
        minimumTcb: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { bootloader: spl, tee: spl, snp: spl, microcode: spl, fmc: spl },
        },
        guestPolicy: {
          type: 'object',
          additionalProperties: false,
          properties: {
            allowDebug: { type: 'boolean' },
            allowMigrateMa: { type: 'boolean' },
            allowSmt: { type: 'boolean' },
            requireSingleSocket: { type: 'boolean' },
          },
        },
        allowedVmpl: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 3 }, minItems: 1, uniqueItems: true },
        minimumGuestSvn: { type: 'integer', minimum: 0, maximum: 4294967295 },
      },
    },
    tdx: {
      type: 'object',
      additionalProperties: false,
      properties: {
        allowedTcbStatuses: { type: 'array', items: { enum: [...TDX_TCB_STATUSES] }, minItems: 1, uniqueItems: true },
        allowedAdvisoryIds: { type: 'array', items: { type: 'string', pattern: '^INTEL-SA-\\d{5}$' }, uniqueItems: true },
        allowDebug: { type: 'boolean' },
      },
    },
    tpm: {
      type: 'object',
      additionalProperties: false,
      properties: {
        requiredBanks: { type: 'array', items: { enum: ['sha1', 'sha256', 'sha384', 'sha512'] }, minItems: 1, uniqueItems: true },
        pinAk: { type: 'boolean' },
      },
    },
    boot: {
      type: 'object',
      additionalProperties: false,
      properties: {
        requireSecureBoot: { type: 'boolean' },
        kernelCmdline: {
          type: 'object',
          additionalProperties: false,
          properties: { required: patternList, forbidden: patternList },
        },
        grubCommands: {
          type: 'object',
          additionalProperties: false,
          properties: { forbidden: patternList },
        },
        requireVerifiedEvents: { type: 'boolean' },
      },
    },
    referenceValues: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'version'],
        properties: {
          id: identifier,
          version: { type: 'string', minLength: 1, maxLength: 128 },
          description: { type: 'string', maxLength: 4096 },
          notBefore: dateTime,
          expires: dateTime,
          snp: {
            type: 'object',
            additionalProperties: false,
            properties: {
              measurement: hexList(48),
              hostData: hexList(32),
              idKeyDigest: hexList(48),
              authorKeyDigest: hexList(48),
            },
          },
          tdx: {
            type: 'object',
            additionalProperties: false,
            properties: {
              mrTd: hexList(48),
              mrConfigId: hexList(48),
              mrOwner: hexList(48),
              mrOwnerConfig: hexList(48),
              rtmr0: hexList(48),
              rtmr1: hexList(48),
              rtmr2: hexList(48),
              rtmr3: hexList(48),
            },
          },
          boot: {
            type: 'object',
            additionalProperties: false,
            properties: {
              bootApps: hexList(32),
              pk: efiReference,
              kek: efiReference,
              db: efiReference,
              dbx: efiReference,
              kernelCmdline: { type: 'array', items: { type: 'string', maxLength: 4096 }, maxItems: 256, uniqueItems: true },
            },
          },
          pcrs: {
            type: 'object',
            additionalProperties: false,
            propertyNames: { enum: ['sha1', 'sha256', 'sha384', 'sha512'] },
            patternProperties: {
              '^': {
                type: 'object',
                additionalProperties: false,
                patternProperties: { '^([0-9]|1[0-9]|2[0-3])$': hexList() },
              },
            },
          },
        },
      },
    },
  },
} as const;
