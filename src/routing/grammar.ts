/**
 * The model-string grammar: a hand-written recursive-descent parser and its printer.
 *
 *   chain       := endpoint ( "->" endpoint )*
 *   endpoint    := model? ( "@" target )? ( "|" constraint )*
 *   target      := mode | provider
 *   constraint  := metric op number unit? | "providers:" names | "skip_providers:" names
 *   names       := name ( "," name )*
 *
 * - A model name is any run of characters other than whitespace, `@`, `|`, `,` and `>`
 *   and the separator `->` (OpenRouter slugs such as `moonshotai/kimi-k2:free` included).
 * - Mode words (`lowest-cost`, `c`, `tps`...) win over provider names after `@`.
 * - After an endpoint that names a target, a bare right side without `/` or `:` is a target
 *   for the same model: `claude-sonnet-4@anthropic->openrouter`. `a->@b` says the same explicitly.
 * - Constraints follow a target (a mode or a provider), never a bare model.
 *
 * Errors are ModelStringErrors pointing at the offending character.
 */
import { ModelStringError } from '../errors.js';

export const MODES = [
  'lowest-cost',
  'lowest-input-cost',
  'lowest-output-cost',
  'highest-tks-per-sec',
  'lowest-ttft',
  'lowest-itl',
  'lowest-latency',
] as const;
export type Mode = (typeof MODES)[number];

export const METRICS = ['tps', 'ttft', 'itl', 'latency', 'cost', 'input-cost', 'output-cost'] as const;
export type Metric = (typeof METRICS)[number];

export type Comparison = '<' | '<=' | '>' | '>=';

export type Constraint =
  /** Times in ms, throughput in tokens/s, prices in $ per million tokens (`cost` blends input:output 3:1). */
  | { kind: 'threshold'; metric: Metric; op: Comparison; value: number }
  | { kind: 'providers'; providers: string[] }
  | { kind: 'skip-providers'; providers: string[] };

export type Target = { kind: 'provider'; name: string } | { kind: 'mode'; mode: Mode };

export interface EndpointNode {
  /** The model; null means the same model as the endpoint before (`a@x->y`). */
  model: string | null;
  /** The provider or mode after `@`; null when the model stands alone. */
  target: Target | null;
  constraints: Constraint[];
}

/** A parsed model string: endpoints tried in order (fallbacks joined by `->`). */
export interface ModelStringAST {
  endpoints: EndpointNode[];
}

const MODE_WORDS: Record<string, Mode> = {
  'lowest-cost': 'lowest-cost',
  cost: 'lowest-cost',
  c: 'lowest-cost',
  'lowest-input-cost': 'lowest-input-cost',
  'input-cost': 'lowest-input-cost',
  ic: 'lowest-input-cost',
  'lowest-output-cost': 'lowest-output-cost',
  'output-cost': 'lowest-output-cost',
  oc: 'lowest-output-cost',
  'highest-tks-per-sec': 'highest-tks-per-sec',
  'tks-per-sec': 'highest-tks-per-sec',
  tps: 'highest-tks-per-sec',
  'lowest-ttft': 'lowest-ttft',
  ttft: 'lowest-ttft',
  t: 'lowest-ttft',
  'lowest-itl': 'lowest-itl',
  itl: 'lowest-itl',
  i: 'lowest-itl',
  'lowest-latency': 'lowest-latency',
  latency: 'lowest-latency',
  l: 'lowest-latency',
};

const METRIC_WORDS: Record<string, Metric> = {
  tps: 'tps',
  'tks-per-sec': 'tps',
  ttft: 'ttft',
  itl: 'itl',
  latency: 'latency',
  cost: 'cost',
  c: 'cost',
  'input-cost': 'input-cost',
  ic: 'input-cost',
  'output-cost': 'output-cost',
  oc: 'output-cost',
};

const TIME_METRICS = new Set<Metric>(['ttft', 'itl', 'latency']);

/** The canonical mode for a mode word or short form, or undefined. */
export function modeFromWord(word: string): Mode | undefined {
  return Object.hasOwn(MODE_WORDS, word) ? MODE_WORDS[word] : undefined;
}

const NAME_CHAR = /[A-Za-z0-9._~+_-]/;
const isModelChar = (c: string): boolean => !/[\s@|,>]/.test(c);

class Parser {
  pos = 0;
  constructor(readonly input: string) {}

  fail(message: string, at = this.pos): never {
    throw new ModelStringError(this.input, message, at);
  }
  peek(n = 0): string {
    return this.input[this.pos + n] ?? '';
  }
  atEnd(): boolean {
    return this.pos >= this.input.length;
  }
  atArrow(): boolean {
    return this.input.startsWith('->', this.pos);
  }

  parse(): ModelStringAST {
    if (this.input.trim() === '') this.fail('it is empty; expected e.g. "openai/gpt-4o-mini", "sim/llama@lowest-cost" or "a@x->b@y".', 0);
    const ws = this.input.search(/\s/);
    if (ws >= 0) this.fail('model strings contain no spaces.', ws);
    const endpoints: EndpointNode[] = [];
    for (;;) {
      endpoints.push(this.endpoint(endpoints[endpoints.length - 1]));
      if (this.atEnd()) break;
      if (this.atArrow()) {
        this.pos += 2;
        continue;
      }
      this.fail(`unexpected "${this.peek()}"; expected "->", "|" or the end.`);
    }
    return { endpoints };
  }

  endpoint(previous: EndpointNode | undefined): EndpointNode {
    const start = this.pos;
    let model: string | null = this.modelName();
    let target: Target | null = null;
    if (model !== null && previous?.target && !/[/:]/.test(model) && this.peek() !== '@') {
      // `a@x->y`: a bare right side after a pinned left side is a target for the same model.
      target = this.targetFromWord(model, start);
      model = null;
    } else if (this.peek() === '@') {
      this.pos++;
      const at = this.pos;
      const word = this.name('a provider or mode');
      target = this.targetFromWord(word, at);
    }
    if (model === null && target === null) {
      this.fail(previous ? 'expected a model or provider after "->".' : 'the model name is missing.', start);
    }
    if (model === null && !previous) this.fail('the model name before "@" is missing.', start);
    const constraints: Constraint[] = [];
    while (this.peek() === '|') {
      if (target === null) this.fail('constraints follow a mode or provider; write e.g. "model@lowest-cost|tps>50".');
      this.pos++;
      constraints.push(this.constraint());
    }
    return { model, target, constraints };
  }

  modelName(): string | null {
    const start = this.pos;
    while (!this.atEnd() && isModelChar(this.peek()) && !this.atArrow()) this.pos++;
    return this.pos === start ? null : this.input.slice(start, this.pos);
  }

  name(what: string): string {
    const start = this.pos;
    while (!this.atEnd() && NAME_CHAR.test(this.peek()) && !this.atArrow()) this.pos++;
    if (this.pos === start) {
      this.fail(this.atEnd() ? `${what} is missing at the end.` : `expected ${what}, found "${this.peek()}".`);
    }
    return this.input.slice(start, this.pos);
  }

  targetFromWord(word: string, at: number): Target {
    const mode = modeFromWord(word);
    if (mode) return { kind: 'mode', mode };
    if (!/^[A-Za-z0-9][A-Za-z0-9._~+_-]*$/.test(word)) {
      const bad = word.search(/[^A-Za-z0-9._~+_-]/);
      this.fail(`"${word}" is not a provider name.`, at + Math.max(0, bad));
    }
    return { kind: 'provider', name: word };
  }

  constraint(): Constraint {
    const start = this.pos;
    let word = '';
    while (!this.atEnd() && /[A-Za-z_-]/.test(this.peek()) && !this.atArrow()) word += this.input[this.pos++];
    if (word === '') this.fail('expected a constraint such as "tps>=50", "ttft<800", "providers:a,b" or "skip_providers:c".');
    if (this.peek() === ':') {
      const kind = word === 'providers' ? 'providers' : word === 'skip_providers' || word === 'skip-providers' ? 'skip-providers' : undefined;
      if (!kind) this.fail(`unknown list "${word}"; expected "providers" or "skip_providers".`, start);
      this.pos++;
      const providers = [this.name('a provider name')];
      while (this.peek() === ',') {
        this.pos++;
        providers.push(this.name('a provider name'));
      }
      return { kind, providers };
    }
    const metric = Object.hasOwn(METRIC_WORDS, word) ? METRIC_WORDS[word] : undefined;
    if (!metric) this.fail(`unknown metric "${word}"; expected one of ${Object.keys(METRIC_WORDS).join(', ')}.`, start);
    const opAt = this.pos;
    let op: Comparison;
    if (this.input.startsWith('<=', this.pos) || this.input.startsWith('>=', this.pos)) {
      op = this.input.slice(this.pos, this.pos + 2) as Comparison;
      this.pos += 2;
    } else if (this.peek() === '<' || this.peek() === '>') {
      op = this.peek() as Comparison;
      this.pos++;
    } else {
      this.fail(`expected "<", "<=", ">" or ">=" after "${word}".`, opAt);
    }
    const numAt = this.pos;
    const match = /^(\d+(\.\d+)?|\.\d+)(e[+-]?\d+)?/i.exec(this.input.slice(this.pos));
    if (!match) this.fail(`expected a number after "${word}${op}".`, numAt);
    this.pos += match[0].length;
    let value = Number(match[0]);
    const unitAt = this.pos;
    let unit = '';
    while (/[A-Za-z/$]/.test(this.peek())) unit += this.input[this.pos++];
    if (unit !== '') {
      if (TIME_METRICS.has(metric) && unit === 'ms') {
        // already milliseconds
      } else if (TIME_METRICS.has(metric) && unit === 's') {
        value *= 1000;
      } else {
        const expected = TIME_METRICS.has(metric) ? '"ms" or "s"' : 'no unit';
        this.fail(`unknown unit "${unit}" for ${metric}; expected ${expected}.`, unitAt);
      }
    }
    if (!Number.isFinite(value)) this.fail(`${match[0]}${unit} is too large a number.`, numAt);
    return { kind: 'threshold', metric, op, value };
  }
}

/** Parse a model string into its AST; throws ModelStringError with the offending position. */
export function parseModelString(input: string): ModelStringAST {
  return new Parser(input).parse();
}

/** Parsed strings kept: a gateway parses the same few model strings on every request. */
const parsed = new Map<string, ModelStringAST>();
const PARSED_KEPT = 1000;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * `parseModelString`, kept: the same AST for the same string, frozen, as the router and the
 * gateway read it on every request. Callers that want to change an AST parse their own.
 */
export function sharedModelString(input: string): ModelStringAST {
  let ast = parsed.get(input);
  if (ast === undefined) {
    ast = deepFreeze(parseModelString(input));
    if (parsed.size >= PARSED_KEPT) parsed.clear();
    parsed.set(input, ast);
  }
  return ast;
}

function printConstraint(c: Constraint): string {
  if (c.kind === 'providers') return `providers:${c.providers.join(',')}`;
  if (c.kind === 'skip-providers') return `skip_providers:${c.providers.join(',')}`;
  // String() of a finite number is always a form the parser reads back (`1e+21` included).
  if (!Number.isFinite(c.value)) throw new ModelStringError(String(c.value), `a threshold must be a finite number, got ${c.value} for ${c.metric}.`);
  return `${c.metric}${c.op}${String(c.value)}`;
}

function printTarget(t: Target): string {
  return t.kind === 'mode' ? t.mode : t.name;
}

/** Print an AST back into a model string (canonical long mode names, times in ms). */
export function printModelString(ast: ModelStringAST): string {
  return ast.endpoints
    .map((e, i) => {
      const previous = i > 0 ? ast.endpoints[i - 1] : undefined;
      let out: string;
      if (e.model === null) {
        const t = e.target ? printTarget(e.target) : '';
        out = previous?.target ? t : `@${t}`;
      } else {
        out = e.target ? `${e.model}@${printTarget(e.target)}` : e.model;
      }
      for (const c of e.constraints) out += `|${printConstraint(c)}`;
      return out;
    })
    .join('->');
}
