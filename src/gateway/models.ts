/**
 * The model names a gateway serves: a caller's `model` (an alias, a model group or a model
 * string) becomes the model string the router runs, with the configured fallbacks appended.
 */
import type { ListedModel } from '../protocols/protocol.js';
import { SIM_MODELS } from '../sim/profiles.js';
import type { GatewayConfig, ModelGroup } from './config.js';

/** A group's deployments as one chain: weighted draws the first by weight, the rest follow by weight. */
function groupChain(group: ModelGroup, random: () => number): string {
  const deployments = [...group.deployments];
  if (group.strategy === 'fallback' || deployments.length === 1) return deployments.map((d) => d.model).join('->');
  const total = deployments.reduce((n, d) => n + d.weight, 0);
  let draw = random() * total;
  let first = deployments.length - 1;
  for (let i = 0; i < deployments.length; i++) {
    draw -= (deployments[i] as { weight: number }).weight;
    if (draw < 0) {
      first = i;
      break;
    }
  }
  const [picked] = deployments.splice(first, 1);
  deployments.sort((a, b) => b.weight - a.weight);
  return [picked, ...deployments].map((d) => (d as { model: string }).model).join('->');
}

/** The model string to route for a caller's model name. */
export function routeModelFor(config: GatewayConfig, name: string, random: () => number = Math.random): string {
  const alias = config.aliases.get(name);
  const group = config.groups.get(name);
  let model = alias ?? (group ? groupChain(group, random) : name);
  const fallbacks = config.routing.fallbacks.get(name) ?? (alias !== undefined ? config.routing.fallbacks.get(alias) : undefined);
  if (fallbacks) model = [model, ...fallbacks.map((f) => config.aliases.get(f) ?? f)].join('->');
  return model;
}

/** What `GET /v1/models` lists: the config's aliases and groups, then the simulator's models. */
export function listedModels(config: GatewayConfig): ListedModel[] {
  const out: ListedModel[] = [];
  for (const name of config.aliases.keys()) out.push({ id: name, ownedBy: 'switchboard' });
  for (const name of config.groups.keys()) out.push({ id: name, ownedBy: 'switchboard' });
  for (const name of Object.keys(SIM_MODELS)) out.push({ id: `sim/${name}`, ownedBy: 'switchboard-simulator' });
  return out;
}
