/** Providers: upstream adapters (echo, OpenAI-compatible), SSE parsing, routing, the forward stage. */
export { createEchoProvider, renderPrompt } from './echo.js';
export { apiKeyProblem } from './api-key.js';
export { createOpenAIProvider, type OpenAIProviderOptions } from './openai.js';
export { upstreamFailure } from './failure.js';
export { SseParser, SseError, type SseEvent } from './sse.js';
export { createProviders, createProvider, ProviderRegistry, type ProviderDeps } from './registry.js';
export { createForwardStage, modelNotConfigured, type ForwardStageOptions } from './stage.js';
