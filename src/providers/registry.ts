/**
 * Builds the configured providers once (one connection pool each) and routes a model name to
 * its provider through the config's `models` map. A model that is not in the map has no
 * provider: nothing is guessed.
 */
import type { Config, ProviderConfig } from '../config/index.js';
import type { ModelProvider, PoolLoad } from '../pipeline/ports.js';
import type { Logger } from '../telemetry/logger.js';
import { createEchoProvider } from './echo.js';
import { createOpenAIProvider } from './openai.js';

export interface ProviderDeps {
  /**
   * Resolves a secret ref (e.g. `env://OPENAI_API_KEY`) to its value; cached by the caller within its
   * lease. Returning a cached value as a plain string (not a promise) lets a provider send its call
   * synchronously (see the OpenAI provider's `complete`).
   */
  resolveSecret: (ref: string) => string | Promise<string>;
  /** Where a provider whose connections are all busy says so (at most once a minute each). */
  logger?: Logger;
}

/** How often a provider may log the same reason its API key cannot be used. */
const KEY_FAILURE_LOG_INTERVAL_MS = 10_000;

/** How often a provider may log that its calls are waiting for a connection. */
const SATURATION_LOG_INTERVAL_MS = 60_000;

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

  /** Each provider's upstream connections now (providers without a pool are left out). */
  *poolLoads(): IterableIterator<[string, PoolLoad]> {
    for (const [name, provider] of this) if (provider.poolLoad) yield [name, provider.poolLoad()];
  }

  /** Closes every provider's connections (waits for in-flight requests). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.values()].map((p) => p.close()));
  }
}

/**
 * @param maxInFlight  `limits.max_in_flight`: the default for `pool.connections`, so that, unless
 *   a provider is capped on purpose, the one bound on calls is the one that refuses at once with
 *   `overloaded`, not a second, silent queue per provider.
 */
export function createProvider(name: string, config: ProviderConfig, deps: ProviderDeps, maxInFlight: number): ModelProvider {
  switch (config.kind) {
    case 'echo':
      return createEchoProvider(name);
    case 'openai': {
      const ref = config.api_key;
      const connections = config.pool.connections ?? maxInFlight;
      return createOpenAIProvider({
        name,
        baseUrl: config.base_url,
        getApiKey: ref === undefined ? undefined : () => deps.resolveSecret(ref),
        timeouts: { connectMs: config.timeouts.connect_ms, headersMs: config.timeouts.headers_ms, bodyMs: config.timeouts.body_ms },
        connections,
        keepAliveMs: config.pool.keep_alive_ms,
        onSaturated: deps.logger && saturationWarning(deps.logger, name, connections),
        onKeyFailure: deps.logger && keyFailureWarning(deps.logger, name, ref),
        onAuthRefused: deps.logger && authRefusedWarning(deps.logger, name, ref !== undefined),
      });
    }
  }
}

/**
 * The warning that a provider's calls have started to wait for a connection: once a minute at
 * most (it fires on every call while the pool is full), naming the key that sets the cap. The
 * queue itself is the `warden_upstream_queued` gauge.
 */
function saturationWarning(logger: Logger, provider: string, connections: number): () => void {
  let lastAt = -Infinity;
  return () => {
    const now = performance.now();
    if (now - lastAt < SATURATION_LOG_INTERVAL_MS) return;
    lastAt = now;
    logger.warn(
      { provider, connections },
      `provider ${provider}: all ${connections} upstream connections are busy (providers.${provider}.pool.connections); further calls wait for one, within limits.upstream_timeout_ms`,
    );
  };
}

export function createProviders(config: Pick<Config, 'providers' | 'models' | 'limits'>, deps: ProviderDeps): ProviderRegistry {
  const maxInFlight = config.limits.max_in_flight;
  const entries = Object.entries(config.providers).map(([name, pc]) => [name, createProvider(name, pc, deps, maxInFlight)] as const);
  return new ProviderRegistry(entries, config.models);
}

/**
 * The warning that a provider's API key cannot be used: every call to it fails with
 * `secret_unavailable`, and the caller is only told the config key, so the log is where the
 * operator learns why (the ref and our own reason, never the value). Once per reason per 10 s.
 */
function keyFailureWarning(logger: Logger, provider: string, ref: string | undefined): (reason: string) => void {
  let lastReason: string | undefined;
  let lastAt = -Infinity;
  return (reason) => {
    const now = performance.now();
    if (reason === lastReason && now - lastAt < KEY_FAILURE_LOG_INTERVAL_MS) return;
    lastReason = reason;
    lastAt = now;
    logger.warn({ provider, config_key: `providers.${provider}.api_key`, ref, reason }, `provider ${provider}: the API key cannot be used; calls fail with secret_unavailable`);
  };
}

/**
 * The warning that a provider answered 401 or 403: it refused Warden's API key (revoked, rotated,
 * of another project) or its access to the model. Every call then fails as `upstream_error` with
 * the status, which the callers cannot act on and the audit record does not carry, so the log is
 * where the operator learns of it. Once per status per 10 s; the upstream's body (which may quote
 * the key or the prompt) is never read.
 */
function authRefusedWarning(logger: Logger, provider: string, hasKey: boolean): (status: number) => void {
  let lastStatus: number | undefined;
  let lastAt = -Infinity;
  const configKey = `providers.${provider}.api_key`;
  const what = hasKey ? `it refused Warden's API key (${configKey}) or its access to the model` : `it wants credentials, and ${configKey} is not set`;
  return (status) => {
    const now = performance.now();
    if (status === lastStatus && now - lastAt < KEY_FAILURE_LOG_INTERVAL_MS) return;
    lastStatus = status;
    lastAt = now;
    logger.warn({ provider, status, config_key: configKey }, `provider ${provider} answered HTTP ${status}: ${what}; calls fail with upstream_error`);
  };
}
