/**
 * OpenAI models served only by the Responses API (`POST /v1/responses`), not by Chat
 * Completions, as OpenAI's model pages list them. A provider whose compat says
 * `responsesAPI: 'when-required'` (the built-in `openai`) speaks the Responses API to these.
 */
const RESPONSES_ONLY: RegExp[] = [
  /^o1-pro(?:-|$)/,
  /^o3-pro(?:-|$)/,
  /^o3-deep-research(?:-|$)/,
  /^o4-mini-deep-research(?:-|$)/,
  /^codex-mini(?:-|$)/,
  /^computer-use-preview(?:-|$)/,
  /^gpt-5(?:\.\d+)?-pro(?:-|$)/,
  /^gpt-5(?:\.\d+)?-codex(?:-|$)/,
];

/** Whether a provider's own model id (`o3-pro`, `openai/o3-pro`) is served only by the Responses API. */
export function needsResponsesAPI(model: string): boolean {
  const id = model.startsWith('openai/') ? model.slice(7) : model;
  return RESPONSES_ONLY.some((pattern) => pattern.test(id));
}
