import { SwitchboardError } from '../errors.js';
import type { DeploymentStats } from './metrics.js';

export interface UnavailableCandidate {
  /** `model@provider`. */
  deployment: string;
  /** Why it was not used: a failed threshold, a provider filter, a cooldown. */
  reason: string;
  stats?: DeploymentStats | undefined;
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
}

function figures(c: UnavailableCandidate): string {
  const parts: string[] = [];
  const s = c.stats;
  if (s?.tokensPerSecond) parts.push(`tps p50 ${Math.round(s.tokensPerSecond.p50)}`);
  if (s?.ttftMs) parts.push(`ttft p50 ${Math.round(s.ttftMs.p50)} ms`);
  if (s?.latencyMs) parts.push(`latency p50 ${Math.round(s.latencyMs.p50)} ms`);
  if (s && s.attempts > 0) parts.push(`errors ${Math.round(s.errorRate * 100)}% of ${s.attempts}`);
  if (c.inputPrice !== undefined && c.outputPrice !== undefined) parts.push(`$${c.inputPrice}/$${c.outputPrice} per M`);
  return parts.length > 0 ? ` [${parts.join(', ')}]` : ' [not measured]';
}

/** No deployment meets the model string's constraints, or every one is cooling down. */
export class NoDeploymentError extends SwitchboardError {
  readonly modelString: string;
  readonly candidates: UnavailableCandidate[];
  constructor(modelString: string, candidates: UnavailableCandidate[], summary = 'no deployment can take this request') {
    const list = candidates.length === 0 ? ' No provider serves it.' : `\n${candidates.map((c) => `  - ${c.deployment}: ${c.reason}${figures(c)}`).join('\n')}`;
    super('no_deployment', `${modelString}: ${summary}.${list}`);
    this.modelString = modelString;
    this.candidates = candidates;
  }
}
