/**
 * Tools the model may call: a name, a description, parameters (a zod schema or a JSON
 * Schema) and, usually, the function that runs them. Arguments arrive as a JSON string;
 * they are parsed strictly as JSON (never as a language literal), validated against the
 * schema, and only then passed to `execute`. Problems go back to the model as the tool's
 * result, so it can correct itself.
 */
import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { Message, ToolCall, ToolDefinition, ToolMessage } from '../types.js';
import { compileSchema, isZodSchema, type CompiledSchema, type JSONSchema, type SchemaInput } from './schema.js';

/** What `execute` receives beside the arguments. */
export interface ToolContext {
  /** The id of the tool call being answered. */
  toolCallId: string;
  /** The model string that asked for the call. */
  model: string;
  /** The conversation so far, as sent to the model for this step. A copy: changing it changes nothing. */
  messages: Message[];
  /** Aborts when the request is aborted. */
  signal?: AbortSignal | undefined;
}

/** A tool with its function. `Args` is the parameters' type (inferred from a zod schema). */
export interface Tool<Args = unknown, Result = unknown> {
  readonly name: string;
  readonly description?: string | undefined;
  readonly parameters: SchemaInput;
  /** Runs the call; without it the model's calls end the turn and are left for the caller. */
  readonly execute?: ((args: Args, context: ToolContext) => Result | Promise<Result>) | undefined;
}

/** A tool, or a bare definition (name, description, JSON Schema) whose calls the caller handles. */
export type ToolInput = Tool<never, unknown> | ToolDefinition;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Define a tool; with a zod schema the arguments of `execute` are typed. */
export function tool<S extends z.ZodType, R>(definition: {
  name: string;
  description?: string;
  parameters: S;
  execute?: (args: z.output<S>, context: ToolContext) => R | Promise<R>;
}): Tool<z.output<S>, R>;
export function tool<R>(definition: {
  name: string;
  description?: string;
  parameters: JSONSchema;
  execute?: (args: Record<string, unknown>, context: ToolContext) => R | Promise<R>;
}): Tool<Record<string, unknown>, R>;
export function tool(definition: Tool<never, unknown>): Tool<never, unknown> {
  if (typeof definition.name !== 'string' || !NAME.test(definition.name)) {
    throw new InvalidInputError(`A tool name must be 1-64 letters, digits, "_" or "-" (providers reject others); got ${JSON.stringify(definition.name)}.`);
  }
  compileSchema(definition.parameters, `tool "${definition.name}" parameters`);
  return { ...definition };
}

/** A tool ready for a turn: its wire definition, validator and function. */
export interface PreparedTool {
  definition: ToolDefinition;
  schema: CompiledSchema;
  execute?: ((args: unknown, context: ToolContext) => unknown) | undefined;
}

/** Check and compile the tools of a request; names must be unique. */
export function prepareTools(tools: readonly ToolInput[]): PreparedTool[] {
  const seen = new Set<string>();
  return tools.map((t) => {
    if (typeof t !== 'object' || t === null || typeof t.name !== 'string' || !NAME.test(t.name)) {
      throw new InvalidInputError(`Each tool needs a name of 1-64 letters, digits, "_" or "-"; got ${JSON.stringify((t as { name?: unknown } | null)?.name)}.`);
    }
    if (seen.has(t.name)) throw new InvalidInputError(`Two tools are named "${t.name}".`);
    seen.add(t.name);
    const schema = compileSchema(t.parameters ?? { type: 'object', properties: {} }, `tool "${t.name}" parameters`);
    const definition: ToolDefinition = { name: t.name, parameters: schema.jsonSchema };
    if (t.description !== undefined) definition.description = t.description;
    const execute = 'execute' in t && typeof t.execute === 'function' ? (t.execute as PreparedTool['execute']) : undefined;
    return { definition, schema, execute };
  });
}

/** Whether a value is a zod schema or JSON Schema usable as tool parameters. */
export function isSchema(value: unknown): boolean {
  return isZodSchema(value) || (typeof value === 'object' && value !== null && !Array.isArray(value));
}

/** The outcome of one tool call: the tool message for the history and the event fields. */
export interface ToolOutcome {
  message: ToolMessage;
  result: unknown;
  isError: boolean;
}

/** Arguments as the model sent them: strict JSON, an object (empty text means no arguments). */
export function parseArguments(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: true, value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'the arguments must be a JSON object' };
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: `the arguments are not valid JSON (${(err as Error).message})` };
  }
}

function resultText(result: unknown): string {
  if (typeof result === 'string') return result;
  if (result === undefined) return '';
  try {
    return JSON.stringify(result) ?? String(result);
  } catch {
    return String(result);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Run one call: parse, validate, execute; every failure becomes an error result for the model. */
export async function runToolCall(call: ToolCall, tools: readonly PreparedTool[], context: Omit<ToolContext, 'toolCallId'>): Promise<ToolOutcome> {
  const fail = (text: string): ToolOutcome => ({ message: { role: 'tool', tool_call_id: call.id, content: `Error: ${text}` }, result: undefined, isError: true });
  const name = call.function.name;
  const found = tools.find((t) => t.definition.name === name);
  if (!found) return fail(`there is no tool named "${name}"; the tools are ${tools.map((t) => t.definition.name).join(', ')}.`);
  const parsed = parseArguments(call.function.arguments);
  if (!parsed.ok) return fail(`invalid arguments for "${name}": ${parsed.error}. Call it again with a JSON object that matches its parameters.`);
  const valid = found.schema.validate(parsed.value);
  if (!valid.ok) return fail(`invalid arguments for "${name}": ${valid.error}. Call it again with arguments that match its parameters.`);
  if (!found.execute) return fail(`the tool "${name}" cannot be run here.`);
  try {
    const result = await found.execute(valid.value, { ...context, toolCallId: call.id });
    return { message: { role: 'tool', tool_call_id: call.id, content: resultText(result) }, result, isError: false };
  } catch (err) {
    return fail(`the tool "${name}" failed: ${errorMessage(err)}`);
  }
}
