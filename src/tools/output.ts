/**
 * Structured output: the schema travels as OpenAI's `response_format` (`json_schema`),
 * which each protocol turns into its own form (Gemini `responseSchema`, Anthropic a forced
 * tool or an instruction). The reply text is parsed as JSON and validated here.
 */
import { compileSchema, isStrictCompatible, type CompiledSchema, type SchemaInput, type Validation } from './schema.js';

export interface OutputSpec {
  name: string;
  schema: CompiledSchema;
}

export function prepareOutput(schema: SchemaInput, name = 'response'): OutputSpec {
  return { name: name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'response', schema: compileSchema(schema, 'schema') };
}

export function responseFormatFor(spec: OutputSpec): Record<string, unknown> {
  return {
    type: 'json_schema',
    json_schema: { name: spec.name, schema: spec.schema.jsonSchema, strict: isStrictCompatible(spec.schema.jsonSchema) },
  };
}

/** The JSON inside a reply: the whole text, or the body of a ```json fence around it. */
function jsonText(text: string): string {
  const trimmed = text.trim();
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n?```$/i.exec(trimmed);
  return fenced?.[1] ?? trimmed;
}

export function parseOutput(spec: OutputSpec, text: string): Validation<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(jsonText(text));
  } catch (err) {
    return { ok: false, error: `the reply is not valid JSON (${(err as Error).message})` };
  }
  return spec.schema.validate(value);
}

/** The message that asks for a corrected reply (sent once, never kept in the history). */
export function retryPrompt(error: string): string {
  return `Your reply did not match the required JSON schema: ${error}. Reply again with only the corrected JSON value.`;
}
