/** Where each simulated provider lives on the simulator's origin (embedded.ts and server.ts share it). */
export function simulatorProviderURL(origin: string, provider: string, protocol: 'openai' | 'anthropic' | 'gemini'): string {
  const base = `${origin.replace(/\/+$/, '')}/${provider}`;
  return protocol === 'openai' ? `${base}/v1` : base;
}
