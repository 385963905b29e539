import { openaiProtocol } from './openai.js';
import type { Protocol, ProtocolName } from './protocol.js';

const PROTOCOLS: Partial<Record<ProtocolName, Protocol>> = { openai: openaiProtocol };

export function getProtocol(name: ProtocolName): Protocol {
  const protocol = PROTOCOLS[name];
  if (!protocol) throw new Error(`protocol ${name} is not available`);
  return protocol;
}
