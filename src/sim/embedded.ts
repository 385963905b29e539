/**
 * The simulator started on demand inside the library's own process, on an ephemeral
 * loopback port, the first time a `sim/...` model is used. `SWITCHBOARD_SIM_URL` points
 * the library at a simulator running elsewhere (`switchboard sim`) instead.
 */
import type { Env } from '../providers/resolve.js';
import { SIM_PROVIDERS } from './profiles.js';
import type { RunningSimulator } from './server.js';
import { simulatorProviderURL } from './urls.js';

export { simulatorProviderURL };

let embedded: Promise<RunningSimulator> | undefined;

/** The simulator's origin: `SWITCHBOARD_SIM_URL`, else the embedded one (started now if need be). */
export async function simulatorOrigin(env: Env): Promise<string> {
  const external = env.SWITCHBOARD_SIM_URL;
  if (external) return external.replace(/\/+$/, '');
  // The server's code loads only when a simulated model is first used.
  embedded ??= import('./server.js').then(({ startSimulator }) => startSimulator({ port: 0, unref: true }));
  return (await embedded).url;
}

export async function simulatorBaseURL(provider: string, env: Env): Promise<string> {
  const protocol = SIM_PROVIDERS[provider]?.protocol ?? 'openai';
  const cloud = SIM_PROVIDERS[provider]?.cloud;
  return simulatorProviderURL(await simulatorOrigin(env), provider, protocol, cloud);
}
