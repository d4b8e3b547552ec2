import Ajv from 'ajv';

/** One schema violation, independent of the ajv major version. */
export interface SchemaViolation {
  /** JSON Pointer of the offending value. */
  pointer: string;
  keyword: string;
  params: Record<string, unknown>;
  message: string;
  /** Set when the violation is about a property name (propertyNames). */
  propertyName?: string;
}

export type SchemaValidator = (doc: unknown) => SchemaViolation[];

/**
 * Compiles a draft-07 schema with ajv. The package depends on ajv 8, but a bundle that leaves ajv external
 * may resolve an older hoisted copy (ajv 6, eslint's) at run time; both are handled so that schema errors
 * always carry a JSON Pointer instead of crashing on a renamed field.
 */
export function compileSchema(schema: object): SchemaValidator {
  const AjvClass = Ajv as unknown as new (opts: Record<string, unknown>) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] | null } };
  const isV8 = typeof (AjvClass.prototype as { addVocabulary?: unknown }).addVocabulary === 'function';
  // ajv 8: strictTypes off because `const` and `enum` without a sibling `type` are intended here.
  // ajv 6: jsonPointers makes dataPath a JSON Pointer, as instancePath is in ajv 8.
  const ajv = new AjvClass(isV8 ? { allErrors: true, strict: true, strictTypes: false, strictRequired: false } : { allErrors: true, jsonPointers: true });
  const validate = ajv.compile(schema);
  return (doc) => {
    if (validate(doc)) return [];
    return (validate.errors ?? []).map((raw) => {
      const e = raw as { instancePath?: string; dataPath?: string; keyword?: string; params?: Record<string, unknown>; message?: string; propertyName?: string };
      const v: SchemaViolation = {
        pointer: e.instancePath ?? e.dataPath ?? '',
        keyword: e.keyword ?? '',
        params: e.params ?? {},
        message: e.message ?? 'is invalid',
      };
      if (typeof e.propertyName === 'string') v.propertyName = e.propertyName;
      return v;
    });
  };
}
