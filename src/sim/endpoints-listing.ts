/**
 * The simulator's endpoints listing, in the shape of OpenRouter's
 * `GET /api/v1/models/{author}/{slug}/endpoints`: for `sim/{model}`, one endpoint per
 * provider serving it, with the speed and first-token latency a client of this simulator
 * observes (the profile's figures with the time scale applied) and uptime from its fail rate.
 * The router reads it as priors before it has measured anything.
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from './delivery.js';
import type { ProfileStore } from './profile-store.js';
import { SIM_MODELS } from './profiles.js';

export const ENDPOINTS_LISTING_PREFIX = '/api/v1/models/';

/** Percentiles around a median, in OpenRouter's field names. */
function percentiles(p50: number, spread: number): { p50: number; p75: number; p90: number; p99: number } {
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { p50: r(p50), p75: r(p50 * spread), p90: r(p50 * spread ** 2), p99: r(p50 * spread ** 4) };
}

/** Answer `GET /api/v1/models/sim/{model}/endpoints` (404 in OpenRouter's error shape otherwise). */
export function sendEndpointsListing(res: ServerResponse, path: string, profiles: ProfileStore, timeScale: number): void {
  const match = /^\/api\/v1\/models\/([^/]+)\/([^/]+)\/endpoints$/.exec(path);
  const author = match?.[1] ? decodeURIComponent(match[1]) : undefined;
  const name = match?.[2] ? decodeURIComponent(match[2]) : '';
  const model = author === 'sim' && Object.hasOwn(SIM_MODELS, name) ? SIM_MODELS[name] : undefined;
  if (!model) {
    const known = Object.keys(SIM_MODELS).map((m) => `sim/${m}`).join(', ');
    return sendJson(res, 404, { error: { code: 404, message: `No endpoints listing at ${path}; the simulator lists ${known} as /api/v1/models/sim/{model}/endpoints` } });
  }
  // With time scale 0 every reply is instant; the profile's own figures are then the best description.
  const scale = timeScale > 0 ? timeScale : 1;
  const endpoints = model.providers.flatMap((provider) => {
    const p = profiles.get(provider);
    if (!p) return [];
    const uptime = Math.round((1 - (p.failRate ?? 0)) * 10_000) / 100;
    return [
      {
        name: `${provider}: sim/${name}`,
        model_id: `sim/${name}`,
        model_name: `sim/${name}`,
        context_length: model.contextLength,
        pricing: { prompt: String(p.inputPrice / 1e6), completion: String(p.outputPrice / 1e6), request: '0', image: '0' },
        provider_name: provider,
        tag: provider,
        quantization: 'unknown',
        max_completion_tokens: null,
        max_prompt_tokens: null,
        supported_parameters: ['temperature', 'top_p', 'max_tokens', 'stop', 'seed', 'tools', 'response_format'],
        status: 0,
        uptime_last_5m: uptime,
        uptime_last_30m: uptime,
        uptime_last_1d: uptime,
        supports_implicit_caching: false,
        // Latency in seconds (higher percentiles slower); throughput in tokens/s (higher percentiles slower).
        latency_last_30m: percentiles((p.ttftMs * scale) / 1000, 1.2),
        throughput_last_30m: percentiles(p.tokensPerSecond / scale, 1 / 1.2),
      },
    ];
  });
  sendJson(res, 200, {
    data: {
      id: `sim/${name}`,
      name: `sim/${name}`,
      created: 0,
      description: `Simulated model served by ${model.providers.join(', ')}.`,
      architecture: { tokenizer: 'Other', instruct_type: null, modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'] },
      endpoints,
    },
  });
}
