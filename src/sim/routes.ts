/**
 * The HTTP endpoints each simulated protocol answers below `/{provider}`, and what a request
 * to one of them is: a generation (Gemini names the model and streaming in the path), a token
 * count, or the model list. Bodies are read and written by the protocols' server halves.
 */
import type { ServerProtocolName } from '../protocols/protocol.js';
import type { SimProviderProfile } from './profiles.js';

export type SimRoute =
  /** `modelInPath`: the body has no model field, the path names it (Vertex's Claude, Azure's deployments). */
  | { kind: 'generate' | 'count'; pathModel?: string; pathStream?: boolean; protocol: ServerProtocolName; modelInPath?: boolean }
  | { kind: 'models' }
  /** A known endpoint used wrongly (answered with 400 and this message). */
  | { kind: 'invalid'; message: string };

/** The endpoints a user should call, for error messages. */
export const ENDPOINT_HINTS: Record<SimProviderProfile['protocol'], string> = {
  openai: 'POST /v1/chat/completions, POST /v1/responses, POST /v1/responses/input_tokens or GET /v1/models',
  anthropic: 'POST /v1/messages, POST /v1/messages/count_tokens or GET /v1/models',
  gemini: 'POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse or :countTokens, or GET /v1beta/models',
  bedrock: 'POST /model/{modelId}/converse, /converse-stream or /count-tokens',
};

const GEMINI_PATH = /^\/v1beta\/models\/(.+):(generateContent|streamGenerateContent|countTokens)$/;

/** Match a method and a path below `/{provider}`; undefined when the protocol has no such endpoint. */
export function routeFor(protocol: SimProviderProfile['protocol'], method: string, path: string, query: URLSearchParams): SimRoute | undefined {
  switch (protocol) {
    // Bedrock is served by a simulated cloud only (sim/clouds.ts routes it).
    case 'bedrock':
      return undefined;
    case 'openai':
      if (method === 'POST' && path === '/v1/chat/completions') return { kind: 'generate', protocol: 'openai' };
      if (method === 'POST' && path === '/v1/responses') return { kind: 'generate', protocol: 'openai-responses' };
      if (method === 'POST' && path === '/v1/responses/input_tokens') return { kind: 'count', protocol: 'openai-responses' };
      if (method === 'GET' && path === '/v1/models') return { kind: 'models' };
      return undefined;
    case 'anthropic':
      if (method === 'POST' && path === '/v1/messages') return { kind: 'generate', protocol: 'anthropic' };
      if (method === 'POST' && path === '/v1/messages/count_tokens') return { kind: 'count', protocol: 'anthropic' };
      if (method === 'GET' && path === '/v1/models') return { kind: 'models' };
      return undefined;
    case 'gemini': {
      if (method === 'GET' && path === '/v1beta/models') return { kind: 'models' };
      const match = GEMINI_PATH.exec(path);
      if (method !== 'POST' || !match?.[1]) return undefined;
      const pathModel = decodeURIComponent(match[1]);
      if (match[2] === 'countTokens') return { kind: 'count', protocol: 'gemini', pathModel };
      const pathStream = match[2] === 'streamGenerateContent';
      if (pathStream && query.get('alt') !== 'sse') return { kind: 'invalid', message: 'the simulator streams Gemini responses as server-sent events only: add ?alt=sse' };
      return { kind: 'generate', protocol: 'gemini', pathModel, pathStream };
    }
  }
}
