/** The public surface of switchboard: re-exports only. */
export { Chat, type ChatOptions, type ChatJSON } from './chat.js';
export { Call, type CallOptions } from './call.js';
export type { Replies } from './fanout.js';
export type { ClientOptions, RequestOptions, ToolOptions, SchemaOptions } from './options.js';
export { tool, type Tool, type ToolContext, type ToolInput } from './tools/tool.js';
export type { SchemaInput, InferSchema, JSONSchema } from './tools/schema.js';
export { DEFAULT_MAX_STEPS } from './tools/loop.js';
export { citationsFrom } from './citations.js';
export { image, pdf, audio, type Input, type InputItem, type Media } from './input.js';
export * from './errors.js';
export type * from './types.js';
export { ProviderRegistry, defaultRegistry, type ProviderConfig, type GroupMember } from './providers/registry.js';
export { startSimulator, type RunningSimulator, type SimulatorOptions } from './sim/server.js';
export { validateHistory } from './history.js';
export {
  parseModelString,
  printModelString,
  MODES,
  METRICS,
  type ModelStringAST,
  type EndpointNode,
  type Constraint,
  type Target,
  type Mode,
  type Metric,
} from './routing/grammar.js';
export { setRoutingDefaults, defaultMetricsStore, defaultPriorStore, type RoutingOptions } from './routing/router.js';
export { PriorStore, parseEndpointsListing, refreshPriors, type Prior, type PriorListing, type PriorStoreOptions } from './routing/priors.js';
export { RoutingPolicy, seededRandom, type PolicyOptions } from './routing/policy.js';
export { CircuitBreakers, type RetryOptions, type BreakerOptions } from './routing/retry.js';
export { MemoryMetricsStore, type MetricsStore, type MetricSample, type DeploymentStats, type Percentiles } from './routing/metrics.js';
export { SQLiteMetricsStore, openMetricsStore, type SQLiteMetricsOptions } from './store/sqlite-metrics.js';
export { SharedMetricsStore, MemorySharedBackend, type SharedMetricsBackend, type SharedMetricsOptions, type MetricsBucket } from './store/shared-metrics.js';
export { setCatalogCandidates, type Candidate, type CandidateSource } from './routing/candidates.js';
export { NoDeploymentError, type UnavailableCandidate } from './routing/no-deployment-error.js';
export { VERSION } from './version.js';
export { MemoryCacheStore, type CacheStore, type CacheEntry, type CacheStats } from './cache/store.js';
export { SQLiteCacheStore, type SQLiteCacheOptions } from './cache/sqlite-store.js';
export type { CacheOptions, CacheSetting } from './cache/response-cache.js';
export { listModels, type ListModelsOptions } from './catalog/refresh.js';
export { Catalog, defaultCatalog, type CatalogModel, type Pricing, type ModelProvider } from './catalog/catalog.js';
export { computeCost, computeCostFemto, costFor, priceFor, setWarnHandler } from './catalog/cost.js';
export { dollarsToFemto, femtoToDecimal, femtoToDollars, formatDollars, sumCosts } from './money.js';
export { estimateTokens, fitToContext } from './catalog/context.js';
export { DEFAULT_LIMITS, type Limits } from './limits.js';
