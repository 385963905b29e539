/** Start the gateway in-process on an ephemeral port, with a fresh request log. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGatewayConfig } from '../../src/gateway/config.js';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { SQLiteConversationLog } from '../../src/store/conversation-log.js';

export const MASTER_KEY = 'sk-gateway-master-0123456789';

export interface RunningGateway {
  url: string;
  gateway: Gateway;
  /** JSON access-log lines written so far. */
  accessLog: Record<string, unknown>[];
  warnings: string[];
  /** The SWITCHBOARD_HOME holding the request log. */
  home: string;
  close(): Promise<void>;
}

/** A gateway on 127.0.0.1:0 from a YAML config (the master key is added unless the YAML sets one). */
/** `open`: no master key (the gateway serves any caller), unless the YAML sets one. */
export async function startGateway(yaml = '', options: { env?: Record<string, string>; requestLog?: boolean; open?: boolean } & Partial<GatewayOptions> = {}): Promise<RunningGateway> {
  const home = mkdtempSync(join(tmpdir(), 'sb-gw-'));
  const env = { ...process.env, SWITCHBOARD_HOME: home, ...options.env };
  const text = /master_key:/.test(yaml) || options.open ? yaml : `master_key: ${MASTER_KEY}\n${yaml}`;
  const config = parseGatewayConfig(text, 'test.yaml', env);
  const accessLog: Record<string, unknown>[] = [];
  const warnings: string[] = [];
  const gateway = new Gateway({
    ...options,
    config,
    requestLog: options.requestLog === false ? false : new SQLiteConversationLog({ env }),
    accessLog: (lines) => {
      for (const line of lines.trim().split('\n')) accessLog.push(JSON.parse(line) as Record<string, unknown>);
    },
    warn: (m) => warnings.push(m),
  });
  const url = await gateway.listen(0, '127.0.0.1');
  return { url, gateway, accessLog, warnings, home, close: async () => void (await gateway.shutdown(1000)) };
}

/** Wait until a condition holds (polling), or fail after `ms`. */
export async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
