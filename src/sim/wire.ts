/**
 * What each protocol module of the simulator provides to the server: which paths it
 * answers, how its request JSON reads into a SimRequest, and how a planned turn and an
 * error look in its wire format.
 */
import type { SimRequest } from './conversation.js';
import type { StreamEncoder } from './delivery.js';
import type { SimModelProfile, SimProviderProfile } from './profiles.js';
import type { PlannedTurn } from './turn.js';

export type WireRoute =
  /** A completion request; Gemini puts the model and streaming in the path. */
  | { kind: 'generate'; model?: string; stream?: boolean }
  | { kind: 'models' }
  /** A known endpoint used wrongly (answered with 400 and this message). */
  | { kind: 'invalid'; message: string };

export interface SimWire {
  readonly protocol: SimProviderProfile['protocol'];
  /** The endpoint a user should call, for error messages (`POST /v1/messages`). */
  readonly endpointHint: string;
  /** Match a method and a path below `/{provider}`; undefined when this protocol has no such endpoint. */
  route(method: string, path: string, query: URLSearchParams): WireRoute | undefined;
  /** Read a parsed JSON body; a string is the reason it is invalid (answered with 400). */
  readRequest(body: unknown, route: WireRoute & { kind: 'generate' }): SimRequest | string;
  /** An error body in the protocol's own shape. */
  errorBody(status: number, message: string): unknown;
  /** The non-streaming response for a planned turn. */
  response(turn: PlannedTurn): unknown;
  /** The frames of a streamed response. */
  streamEncoder(turn: PlannedTurn, request: SimRequest): StreamEncoder;
  /** The body of the model list endpoint, when the protocol has one. */
  modelList?(models: Record<string, SimModelProfile>, profile: SimProviderProfile): unknown;
}

/** A plain JSON object, or undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A positive integer from a body field: the number, undefined when absent, or an error text. */
export function readPositiveInt(value: unknown, field: string): number | undefined | string {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) return `${field} must be a positive integer`;
  return value;
}
