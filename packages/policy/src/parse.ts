import { parseAllDocuments } from 'yaml';
import { inputError } from '@joinguard/core';
import { policySchema } from './schema.js';
import { compileSchema, type SchemaValidator, type SchemaViolation } from './validator.js';
import type { Policy } from './types.js';

/** Largest policy document accepted; real policies are a few kilobytes. */
export const MAX_POLICY_BYTES = 1024 * 1024;

export interface PolicyIssue {
  /** JSONPath of the offending value, e.g. `$.referenceValues[0].expires`. */
  path: string;
  code: string;
  message: string;
}

let compiled: SchemaValidator | undefined;

/**
 * A JSON Pointer (ajv's instancePath) as a JSONPath. With the document, a numeric segment is written as
 * an index only where it indexes an array (PCR "7" in a map is `["7"]`, the seventh entry of a list `[7]`).
 */
export function pointerToPath(pointer: string, doc?: unknown): string {
  if (pointer === '') return '$';
  let out = '$';
  let node: unknown = doc;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const isIndex = /^\d+$/.test(seg) && (doc === undefined || Array.isArray(node));
    if (isIndex) out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function describe(e: SchemaViolation, doc: unknown): PolicyIssue {
  let pointer = e.pointer;
  let message = e.message;
  if (e.keyword === 'additionalProperties') {
    const p = (e.params as { additionalProperty: string }).additionalProperty;
    pointer += '/' + p.replace(/~/g, '~0').replace(/\//g, '~1');
    message = 'is not a known property';
  } else if (e.keyword === 'required') {
    message = `must have property ${(e.params as { missingProperty: string }).missingProperty}`;
  } else if (e.keyword === 'enum') {
    message = `must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  } else if (e.keyword === 'const') {
    message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  }
  if (e.propertyName !== undefined) {
    pointer += '/' + e.propertyName.replace(/~/g, '~0').replace(/\//g, '~1');
    message = `is not an allowed property name: ${message}`;
  }
  return { path: pointerToPath(pointer, doc), code: 'POLICY_SCHEMA', message };
}

/** Schema errors of a parsed document, each with the JSONPath of the value; empty when it conforms. */
export function schemaErrors(doc: unknown): PolicyIssue[] {
  compiled ??= compileSchema(policySchema);
  const violations = compiled(doc);
  const seen = new Set<string>();
  const out: PolicyIssue[] = [];
  for (const e of violations) {
    // propertyNames repeats itself once per failing name with a nested error; keep one line per place.
    if (e.keyword === 'propertyNames' && e.propertyName === undefined) continue;
    const issue = describe(e, doc);
    const k = `${issue.path} ${issue.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(issue);
    }
  }
  return out;
}

/** Parses YAML or JSON text (JSON is YAML) into a plain value, refusing what is not one document of plain data. */
export function parsePolicyDocument(text: string): unknown {
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    throw inputError('POLICY_INVALID', `the policy is larger than ${MAX_POLICY_BYTES} bytes`, { maxBytes: MAX_POLICY_BYTES });
  }
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    // The core schema gives only JSON types (no timestamps or binary); warnings (unknown tags) are errors,
    // since a tag is not plain data.
    docs = parseAllDocuments(text, { schema: 'core', uniqueKeys: true, prettyErrors: true, logLevel: 'silent' });
  } catch (e) {
    throw inputError('POLICY_INVALID', `the policy is neither valid YAML nor JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(docs) ? docs : [];
  if (list.length !== 1) throw inputError('POLICY_INVALID', `the policy must be exactly one YAML/JSON document, found ${list.length}`);
  const doc = list[0]!;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw inputError('POLICY_INVALID', `the policy is neither valid YAML nor JSON: ${problem.message}`);
  try {
    // Aliases are capped so that a "billion laughs" document cannot expand without bound.
    return doc.toJS({ maxAliasCount: 64 }) as unknown;
  } catch (e) {
    throw inputError('POLICY_INVALID', `the policy cannot be read as plain data: ${(e as Error).message}`);
  }
}

/**
 * Parses and schema-validates a policy. Throws POLICY_INVALID for unreadable text and POLICY_SCHEMA
 * (details.errors: [{path, message}]) for a document that does not fit the schema. Semantic checks that
 * depend on time are checkPolicy's.
 */
export function parsePolicy(textOrDoc: string | unknown): Policy {
  const doc = typeof textOrDoc === 'string' ? parsePolicyDocument(textOrDoc) : textOrDoc;
  const errors = schemaErrors(doc);
  if (errors.length > 0) {
    const first = errors[0]!;
    throw inputError('POLICY_SCHEMA', `the policy does not fit the schema: ${first.path} ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`, {
      errors,
    });
  }
  return doc as Policy;
}
