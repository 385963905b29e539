/** Where each simulated provider lives on the simulator's origin (embedded.ts and server.ts share it). */
export function simulatorProviderURL(origin: string, provider: string, protocol: string, cloud?: string): string {
  const base = `${origin.replace(/\/+$/, '')}/${provider}`;
  // A simulated cloud's paths start where the cloud's own do (`/openai/v1`, `/model`, `/v1/projects`).
  return protocol === 'openai' && cloud === undefined ? `${base}/v1` : base;
}
