/**
 * Schemas for tool parameters and structured output: a zod (v4) schema or a plain JSON
 * Schema. Either becomes the JSON Schema sent on the wire (zod through `z.toJSONSchema`,
 * nested objects, arrays, enums and unions kept) and a validator (zod's own, or ajv).
 */
import { createRequire } from 'node:module';
import type { Ajv, ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';

// zod and ajv load on first use, not with the library: together they cost ~250 ms of start-up
// that every Chat and Call (and the CLI) would pay whether or not it uses a schema. Loaded
// synchronously (`tool()` compiles at definition); zod's CommonJS build reads schemas made
// with its ES module build alike (descriptions included: the registry is shared).
const requireLazily = createRequire(import.meta.url);
let zodModule: typeof import('zod') | undefined;
const zod = (): typeof import('zod') => (zodModule ??= requireLazily('zod') as typeof import('zod'));

/** A JSON Schema as a plain object. */
export type JSONSchema = Record<string, unknown>;

/** What `parameters` and `schema` accept: a zod schema or a JSON Schema object. */
export type SchemaInput = z.ZodType | JSONSchema;

/** The value a schema describes: zod's output type, or `unknown` for a plain JSON Schema. */
export type InferSchema<S> = S extends z.ZodType ? z.output<S> : unknown;

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

export interface CompiledSchema<T = unknown> {
  /** The JSON Schema for the wire (no `$schema` key). */
  jsonSchema: JSONSchema;
  validate(value: unknown): Validation<T>;
}

export function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value && typeof (value as { safeParse?: unknown }).safeParse === 'function';
}

let ajv: Ajv | undefined;
let ajv2020: Ajv2020 | undefined;

function ajvFor(schema: JSONSchema): Ajv | Ajv2020 {
  const draft = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (draft.includes('2020-12') || draft.includes('2019-09')) {
    const { Ajv2020: Ajv2020Class } = requireLazily('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
    return (ajv2020 ??= new Ajv2020Class({ allErrors: true, strict: false }));
  }
  const { Ajv: AjvClass } = requireLazily('ajv') as typeof import('ajv');
  return (ajv ??= new AjvClass({ allErrors: true, strict: false }));
}

function withoutDraft(schema: JSONSchema): JSONSchema {
  const { $schema: _drop, ...rest } = schema;
  return rest;
}

/**
 * Zod objects drop unknown keys, so saying so on the wire costs nothing and lets OpenAI's
 * strict mode accept the schema: objects without an `additionalProperties` get `false`.
 */
function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: JSONSchema = {};
  for (const [key, value] of Object.entries(schema)) out[key] = key === 'properties' || key === '$defs' || key === 'definitions' ? mapValues(value) : closeObjects(value);
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function mapValues(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, closeObjects(v)]));
}

/** Zod issues as one line each: `path: message`. */
function zodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

const cache = new WeakMap<object, CompiledSchema>();

/** Compile a zod schema or JSON Schema once (cached per schema object). */
export function compileSchema<T = unknown>(schema: SchemaInput, label: string): CompiledSchema<T> {
  const cached = cache.get(schema);
  if (cached) return cached as CompiledSchema<T>;
  let compiled: CompiledSchema;
  if (isZodSchema(schema)) {
    let json: JSONSchema;
    try {
      json = zod().z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JSONSchema;
    } catch (err) {
      throw new InvalidInputError(`${label}: this zod schema has no JSON Schema form (${(err as Error).message}).`);
    }
    compiled = {
      jsonSchema: closeObjects(withoutDraft(json)) as JSONSchema,
      validate(value) {
        const parsed = schema.safeParse(value);
        return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: zodError(parsed.error) };
      },
    };
  } else if (typeof schema === 'object' && schema !== null && !Array.isArray(schema)) {
    let check: ValidateFunction;
    try {
      check = ajvFor(schema).compile(schema);
    } catch (err) {
      throw new InvalidInputError(`${label}: not a valid JSON Schema (${(err as Error).message}).`);
    }
    compiled = {
      jsonSchema: withoutDraft(schema),
      validate(value) {
        if (check(value)) return { ok: true, value };
        const errors = (check.errors ?? []).map((e) => `${e.instancePath === '' ? '(root)' : e.instancePath.slice(1).replaceAll('/', '.')}: ${e.message ?? 'invalid'}`);
        return { ok: false, error: errors.join('; ') || 'does not match the schema' };
      },
    };
  } else {
    throw new InvalidInputError(`${label}: expected a zod schema or a JSON Schema object.`);
  }
  cache.set(schema, compiled);
  return compiled as CompiledSchema<T>;
}

/**
 * Whether OpenAI's strict mode accepts the schema: every object lists all its properties
 * as required and forbids others. Strict is asked for only then.
 */
export function isStrictCompatible(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.every(isStrictCompatible);
  if (typeof schema !== 'object' || schema === null) return true;
  const s = schema as JSONSchema;
  if (s.type === 'object' || s.properties !== undefined) {
    const props = Object.keys((s.properties as JSONSchema | undefined) ?? {});
    const required = Array.isArray(s.required) ? s.required : [];
    if (s.additionalProperties !== false || props.some((p) => !required.includes(p))) return false;
  }
  return Object.values(s).every(isStrictCompatible);
}
