/** The wire protocols by name: client halves (getProtocol) and server halves (getProtocolServer). */
import { anthropicProtocol } from './anthropic.js';
import { anthropicServer } from './anthropic-server.js';
import { bedrockProtocol } from './bedrock.js';
import { bedrockServer } from './bedrock-server.js';
import { geminiProtocol } from './gemini.js';
import { geminiServer } from './gemini-server.js';
import { openaiProtocol } from './openai.js';
import { openaiServer } from './openai-server.js';
import { openaiResponsesProtocol } from './openai-responses.js';
import { openaiResponsesServer } from './openai-responses-server.js';
import type { Protocol, ProtocolName, ProtocolServer, ServerProtocolName } from './protocol.js';

const PROTOCOLS: Record<ProtocolName, Protocol> = {
  openai: openaiProtocol,
  'openai-responses': openaiResponsesProtocol,
  anthropic: anthropicProtocol,
  gemini: geminiProtocol,
  bedrock: bedrockProtocol,
};

export function getProtocol(name: ProtocolName): Protocol {
  const protocol = PROTOCOLS[name];
  if (!protocol) throw new TypeError(`Unknown protocol "${String(name)}"; expected one of ${Object.keys(PROTOCOLS).join(', ')}.`);
  return protocol;
}

const SERVERS: Record<ServerProtocolName, ProtocolServer> = {
  openai: openaiServer,
  'openai-responses': openaiResponsesServer,
  anthropic: anthropicServer,
  gemini: geminiServer,
  bedrock: bedrockServer,
};

export function getProtocolServer(name: ServerProtocolName): ProtocolServer {
  const server = SERVERS[name];
  if (!server) throw new TypeError(`No server half for protocol "${String(name)}"; available: ${Object.keys(SERVERS).join(', ')}.`);
  return server;
}

export { anthropicServer, bedrockServer, geminiServer, openaiResponsesServer, openaiServer };
export { WireRequestError } from './protocol.js';
export { anthropicProtocol, bedrockProtocol, geminiProtocol, openaiProtocol, openaiResponsesProtocol };
export type {
  Endpoint,
  ListedModel,
  Protocol,
  ProtocolCompat,
  ProtocolName,
  ProtocolServer,
  ResponseMeta,
  ServerProtocolName,
  ServerRequest,
  ServerRequestContext,
  StreamEnd,
  StreamReader,
  StreamWriter,
  WireErrorResponse,
  WireRequest,
} from './protocol.js';
