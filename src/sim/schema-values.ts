/**
 * Values that satisfy a JSON Schema, made up deterministically: the simulator's tool-call
 * arguments and structured replies. Types, required and optional properties, enums,
 * constants, nested objects and arrays, unions, local `$ref`s and simple bounds are honoured;
 * strings prefer a name from the prompt.
 */

type Schema = Record<string, unknown>;

function record(value: unknown): Schema | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Schema) : undefined;
}

export interface ValueHints {
  /** A proper noun or key word from the prompt, used for free-text strings. */
  word: string;
}

function resolveRef(schema: Schema, root: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#')) return schema;
  let node: unknown = root;
  for (const key of ref.slice(1).split('/').filter(Boolean)) node = record(node)?.[decodeURIComponent(key.replace(/~1/g, '/').replace(/~0/g, '~'))];
  return record(node) ?? {};
}

function typeOf(schema: Schema): string | undefined {
  const type = schema.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) return type.find((t): t is string => typeof t === 'string' && t !== 'null') ?? 'null';
  if (schema.properties !== undefined) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

function numberIn(schema: Schema, integer: boolean): number {
  const min = typeof schema.minimum === 'number' ? schema.minimum : typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum + 1 : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum - 1 : undefined;
  let n = min ?? (max !== undefined ? Math.min(3, max) : 3);
  if (max !== undefined && n > max) n = max;
  return integer ? Math.ceil(n) : n;
}

function stringFor(schema: Schema, hints: ValueHints): string {
  switch (schema.format) {
    case 'date':
      return '2025-01-15';
    case 'date-time':
      return '2025-01-15T12:00:00Z';
    case 'time':
      return '12:00:00';
    case 'email':
      return 'user@example.com';
    case 'uri':
    case 'url':
      return 'https://example.com/';
    case 'uuid':
      return '123e4567-e89b-42d3-a456-426614174000';
  }
  let text = hints.word;
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
  while (text.length < min) text += ` ${hints.word}`;
  return text.slice(0, max);
}

/** A value that satisfies `schema` (resolved against `root` for `$ref`). */
export function valueFor(schema: unknown, hints: ValueHints, root: unknown = schema, depth = 0): unknown {
  let s = record(schema);
  if (!s || depth > 12) return null;
  s = resolveRef(s, record(root) ?? {});
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = s[key];
    if (Array.isArray(options) && options.length > 0) {
      const pick = options.find((o) => record(o)?.type !== 'null') ?? options[0];
      return valueFor(pick, hints, root, depth + 1);
    }
  }
  if (Array.isArray(s.allOf) && s.allOf.length > 0) {
    const merged: Schema = {};
    for (const part of s.allOf) {
      const r = record(part);
      if (!r) continue;
      Object.assign(merged, r, { properties: { ...record(merged.properties), ...record(r.properties) } });
    }
    return valueFor(merged, hints, root, depth + 1);
  }
  switch (typeOf(s)) {
    case 'string':
      return stringFor(s, hints);
    case 'integer':
      return numberIn(s, true);
    case 'number':
      return numberIn(s, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 1;
      const max = typeof s.maxItems === 'number' ? s.maxItems : Infinity;
      const count = Math.min(Math.max(1, min), max);
      if (Array.isArray(s.prefixItems)) return s.prefixItems.map((item) => valueFor(item, hints, root, depth + 1));
      return Array.from({ length: count }, () => valueFor(s.items ?? {}, hints, root, depth + 1));
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, prop] of Object.entries(record(s.properties) ?? {})) out[key] = valueFor(prop, { word: hints.word }, root, depth + 1);
      return out;
    }
    default:
      return hints.word;
  }
}

/** A value of the wrong kind for `schema`: a required property (or the value itself) gets the wrong type. */
export function invalidValueFor(schema: unknown, hints: ValueHints): unknown {
  const s = record(schema) ?? {};
  const valid = valueFor(s, hints);
  const required = Array.isArray(s.required) ? s.required.filter((k): k is string => typeof k === 'string') : [];
  if (typeOf(s) === 'object' && record(valid)) {
    const key = required[0] ?? Object.keys(record(s.properties) ?? {})[0];
    if (key === undefined) return 'not an object';
    const prop = resolveRef(record(record(s.properties)?.[key]) ?? {}, s);
    return { ...record(valid), [key]: typeOf(prop) === 'string' ? 12345 : 'not valid here' };
  }
  return typeOf(s) === 'string' ? 12345 : 'not valid here';
}

/** A JavaScript value written as a Python literal (single quotes, True/False/None): what a careless model sends. */
export function pythonLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(', ')}]`;
  return `{${Object.entries(value as Record<string, unknown>).map(([k, v]) => `'${k}': ${pythonLiteral(v)}`).join(', ')}}`;
}
