/** The public surface of switchboard: re-exports only. */
export { Chat, type ChatOptions, type ChatJSON } from './chat.js';
export { Call, type CallOptions } from './call.js';
export type { Replies } from './fanout.js';
export type { ClientOptions, RequestOptions } from './options.js';
export { image, pdf, audio, type Input, type InputItem, type Media } from './input.js';
export * from './errors.js';
export type * from './types.js';
export { ProviderRegistry, defaultRegistry, type ProviderConfig } from './providers/registry.js';
export { startSimulator, type RunningSimulator, type SimulatorOptions } from './sim/server.js';
export { validateHistory } from './history.js';
export { VERSION } from './version.js';
