/**
 * Builds the configured providers once (one connection pool each) and routes a model name to
 * its provider through the config's `models` map. A model that is not in the map has no
 * provider: nothing is guessed.
 */
import type { Config, ProviderConfig } from '../config/index.js';
import type { ModelProvider } from '../pipeline/ports.js';
import { createEchoProvider } from './echo.js';
import { createOpenAIProvider } from './openai.js';

export interface ProviderDeps {
  /**
   * Resolves a secret ref (e.g. `env://OPENAI_API_KEY`) to its value; cached by the caller within its
   * lease. Returning a cached value as a plain string (not a promise) lets a provider send its call
   * synchronously (see the OpenAI provider's `complete`).
   */
  resolveSecret: (ref: string) => string | Promise<string>;
}

/** Provider name → provider, plus model routing. */
export class ProviderRegistry extends Map<string, ModelProvider> {
  constructor(
    providers: Iterable<readonly [string, ModelProvider]>,
    private readonly models: Readonly<Record<string, string>>,
  ) {
    super(providers);
  }

  /** The provider name `model` routes to, or undefined when the model is not configured. */
  providerNameFor(model: string): string | undefined {
    return Object.hasOwn(this.models, model) ? this.models[model] : undefined;
  }

  providerFor(model: string): ModelProvider | undefined {
    const name = this.providerNameFor(model);
    return name === undefined ? undefined : this.get(name);
  }

  /** Configured model names (for /v1/models, before the policy narrows them). */
  modelNames(): string[] {
    return Object.keys(this.models);
  }

  /** Closes every provider's connections (waits for in-flight requests). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.values()].map((p) => p.close()));
  }
}

export function createProvider(name: string, config: ProviderConfig, deps: ProviderDeps): ModelProvider {
  switch (config.kind) {
    case 'echo':
      return createEchoProvider(name);
    case 'openai': {
      const ref = config.api_key;
      return createOpenAIProvider({
        name,
        baseUrl: config.base_url,
        getApiKey: ref === undefined ? undefined : () => deps.resolveSecret(ref),
        timeouts: { connectMs: config.timeouts.connect_ms, headersMs: config.timeouts.headers_ms, bodyMs: config.timeouts.body_ms },
        connections: config.pool.connections,
      });
    }
  }
}

export function createProviders(config: Pick<Config, 'providers' | 'models'>, deps: ProviderDeps): ProviderRegistry {
  const entries = Object.entries(config.providers).map(([name, pc]) => [name, createProvider(name, pc, deps)] as const);
  return new ProviderRegistry(entries, config.models);
}
