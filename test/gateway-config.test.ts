/** The gateway's YAML config: schema errors with file, line and key; env references; aliases and groups. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { routeModelFor } from '../src/gateway/models.js';

const parse = (text: string, env: Record<string, string> = {}) => parseGatewayConfig(text, 'gw.yaml', env);
const failure = (text: string, env: Record<string, string> = {}): string => {
  try {
    parse(text, env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};

describe('the gateway config', () => {
  it('fills in defaults for an empty file', () => {
    const c = parse('');
    expect(c).toMatchObject({ host: '127.0.0.1', port: 4000, masterKey: undefined, limits: { maxInFlight: 1024, maxBodyBytes: 10485760 } });
    expect(c.logging).toEqual({ requests: true, accessLog: true, content: false });
  });

  it('names the file, the line and the key of a wrong value', () => {
    expect(failure('listen:\n  port: 4000\nlimits:\n  max_in_flight: -3\n')).toMatch(/^gw\.yaml:4: limits\.max_in_flight: .*(>0|positive|too small)/i);
    expect(failure('providers:\n  - name: a\n    protocol: soap\n    base_url: http://x\n')).toMatch(/^gw\.yaml:3: providers\[0\]\.protocol: /);
  });

  it('names an unknown key and lists the known ones', () => {
    expect(failure('limits:\n  max_inflight: 3\n')).toMatch(/^gw\.yaml:2: limits\.max_inflight: is not a known setting \(known here: max_body_bytes, max_in_flight/);
    expect(failure('routeing: {}\n')).toMatch(/^gw\.yaml:1: routeing: is not a known setting/);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(failure('aliases:\n  a: b\n   c: [\n')).toMatch(/^gw\.yaml:\d+: not valid YAML/);
  });

  it('reads environment references, with defaults, and refuses unset ones by name', () => {
    const c = parse('master_key: ${MK}\nlisten:\n  host: ${HOST:-0.0.0.0}\nkeys:\n  openai: ${OPENAI_KEY}\n', { MK: 'master-key-123456', OPENAI_KEY: 'sk-openai-abcdef123456' });
    expect(c.masterKey).toBe('master-key-123456');
    expect(c.host).toBe('0.0.0.0');
    expect(c.env.OPENAI_API_KEY).toBe('sk-openai-abcdef123456');
    const msg = failure('providers:\n  - name: box\n    protocol: openai\n    base_url: http://box/v1\n    api_key: ${BOX_KEY}\n');
    expect(msg).toMatch(/^gw\.yaml:5: providers\[0\]\.api_key: refers to \$\{BOX_KEY\}, which is not set/);
  });

  it('never puts a secret into an error message', () => {
    const msg = failure('master_key: ${MK}\nlimits:\n  max_in_flight: ${MK}\n', { MK: 'topsecret-master-key' });
    expect(msg).toMatch(/limits\.max_in_flight/);
    expect(msg).not.toContain('topsecret-master-key');
  });

  it('takes the master key from SWITCHBOARD_MASTER_KEY when the file has none', () => {
    expect(parse('', { SWITCHBOARD_MASTER_KEY: 'from-the-environment' }).masterKey).toBe('from-the-environment');
  });

  it('refuses a name that is both an alias and a model group', () => {
    expect(failure('aliases:\n  smart: sim/llama\nmodel_groups:\n  smart:\n    deployments:\n      - model: sim/mini\n')).toMatch(/^gw\.yaml:4: model_groups\.smart: "smart" is also an alias/);
  });
});

describe('the cors section', () => {
  it('is off unless written, and fills in its defaults', () => {
    expect(parse('').cors).toBeUndefined();
    expect(parse("cors: { origins: '*' }\n").cors).toEqual({ origins: '*', maxAgeSeconds: 7200, exposeHeaders: [] });
    expect(parse('cors: { origins: https://app.example.com, max_age_seconds: 0 }\n').cors).toEqual({ origins: ['https://app.example.com'], maxAgeSeconds: 0, exposeHeaders: [] });
  });

  it('writes each origin as a browser sends it: lower case, no default port', () => {
    const c = parse('cors:\n  origins: [HTTPS://App.Example.com:443, "http://localhost:*", "http://127.0.0.1:08080", "https://*.preview.example.com", "http://[::1]:5173"]\n  expose_headers: [X-Trace-Id]\n');
    expect(c.cors).toEqual({
      origins: ['https://app.example.com', 'http://localhost:*', 'http://127.0.0.1:8080', 'https://*.preview.example.com', 'http://[::1]:5173'],
      maxAgeSeconds: 7200,
      exposeHeaders: ['x-trace-id'],
    });
  });

  it('docs/gateway.md\'s config reference parses, its cors example as documented', () => {
    const doc = readFileSync(new URL('../docs/gateway.md', import.meta.url), 'utf8');
    const reference = /### The config file\n\n```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
    const c = parse(reference, { SWITCHBOARD_MASTER_KEY: 'docs-master-key', GPU_BOX_KEY: 'docs-gpu-key', ANTHROPIC_API_KEY: 'docs-anthropic-key' });
    expect(c.cors).toEqual({ origins: ['https://app.example.com', 'http://localhost:*', 'https://*.preview.example.com'], maxAgeSeconds: 7200, exposeHeaders: ['x-trace-id'] });
  });

  it('refuses what is not an origin, naming the line and the entry', () => {
    const cases: [string, RegExp][] = [
      ['cors:\n  origins:\n    - https://ok.example.com\n    - https://app.example.com/\n', /^gw\.yaml:4: cors\.origins\[1\]: "https:\/\/app\.example\.com\/" has a path; an origin is only scheme:\/\/host\[:port\]/],
      ['cors:\n  origins: [app.example.com]\n', /^gw\.yaml:2: cors\.origins\[0\]: "app\.example\.com" is not an origin; write scheme:\/\/host\[:port\]/],
      ['cors:\n  origins: [null]\n', /^gw\.yaml:2: cors\.origins/],
      ['cors:\n  origins: ["https://*.com"]\n', /cors\.origins\[0\]: .*"\*\." must stand before a domain of two labels/],
      ['cors:\n  origins: ["http://localhost:99999"]\n', /cors\.origins\[0\]: .*port outside 1-65535/],
      ['cors:\n  origins: [https://a.example.com, "*"]\n', /cors\.origins\[1\]: '\*' stands for every origin and must stand alone/],
      ['cors:\n  origins: []\n', /^gw\.yaml:2: cors\.origins: at least one origin/],
      ['cors:\n  origins: 42\n', /^gw\.yaml:2: cors\.origins: '\*' or a list of origins/],
      ['cors:\n  max_age_seconds: 60\n', /^gw\.yaml:1: cors\.origins: is required: '\*' or a list/],
      ['cors:\n  origins: "*"\n  max_age_seconds: 100000\n', /^gw\.yaml:3: cors\.max_age_seconds: at most 86400/],
      ['cors:\n  origins: "*"\n  expose_headers: ["x bad"]\n', /^gw\.yaml:3: cors\.expose_headers\[0\]: a header name/],
      ['cors:\n  origins: "*"\n  allow_credentials: true\n', /^gw\.yaml:3: cors\.allow_credentials: is not a known setting \(known here: origins, max_age_seconds, expose_headers\)/],
    ];
    for (const [text, expected] of cases) expect(failure(text)).toMatch(expected);
  });
});

describe('model names', () => {
  const config = parse(
    [
      'aliases:',
      '  fast: sim/llama@sim-fast',
      'model_groups:',
      '  pool:',
      '    deployments:',
      '      - { model: sim/llama@sim-fast, weight: 3 }',
      '      - { model: sim/llama@sim-cheap, weight: 1 }',
      '  ordered:',
      '    strategy: fallback',
      '    deployments:',
      '      - model: sim/mini@sim-cheap',
      '      - model: sim/llama@sim-gemini',
      'routing:',
      '  fallbacks:',
      '    fast: [sim/mini@sim-cheap]',
    ].join('\n'),
  );

  it('resolves aliases and appends their fallbacks', () => {
    expect(routeModelFor(config, 'fast')).toBe('sim/llama@sim-fast->sim/mini@sim-cheap');
    expect(routeModelFor(config, 'sim/mini')).toBe('sim/mini');
  });

  it('draws a weighted group\'s first deployment by weight, the others as fallbacks', () => {
    expect(routeModelFor(config, 'pool', () => 0.1)).toBe('sim/llama@sim-fast->sim/llama@sim-cheap');
    expect(routeModelFor(config, 'pool', () => 0.9)).toBe('sim/llama@sim-cheap->sim/llama@sim-fast');
    let fast = 0;
    for (let i = 0; i < 400; i++) if (routeModelFor(config, 'pool', () => i / 400).startsWith('sim/llama@sim-fast')) fast++;
    expect(fast).toBe(300);
  });

  it('keeps a fallback group in the order written', () => {
    expect(routeModelFor(config, 'ordered', () => 0.99)).toBe('sim/mini@sim-cheap->sim/llama@sim-gemini');
  });
});
