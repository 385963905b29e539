/** The wire protocols by name. */
import { anthropicProtocol } from './anthropic.js';
import { bedrockProtocol } from './bedrock.js';
import { geminiProtocol } from './gemini.js';
import { openaiProtocol } from './openai.js';
import type { Protocol, ProtocolName } from './protocol.js';

const PROTOCOLS: Record<ProtocolName, Protocol> = {
  openai: openaiProtocol,
  anthropic: anthropicProtocol,
  gemini: geminiProtocol,
  bedrock: bedrockProtocol,
};

export function getProtocol(name: ProtocolName): Protocol {
  const protocol = PROTOCOLS[name];
  if (!protocol) throw new TypeError(`Unknown protocol "${String(name)}"; expected one of ${Object.keys(PROTOCOLS).join(', ')}.`);
  return protocol;
}

export { anthropicProtocol, bedrockProtocol, geminiProtocol, openaiProtocol };
export type { Endpoint, Protocol, ProtocolCompat, ProtocolName, StreamReader, WireRequest } from './protocol.js';
