/**
 * Builds every stage from the Config: the one file that knows which module implements which
 * stage. Everything reloadable (policies, templates) is read through the LiveSetHolder's getters,
 * so the stages never need rebuilding.
 */
import { dirname } from 'node:path';
import type { Config } from '../config/schema.js';
import { DevAuthenticator, KubernetesTokenAuthenticator, createAuthenticateStage } from '../identity/index.js';
import { WardenError, formatLocation, isWardenError } from '../pipeline/errors.js';
import type { PipelineStages } from '../pipeline/pipeline.js';
import type { Authenticator, AuditLog } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { Principal } from '../pipeline/types.js';
import { createEnvSecretProvider, createFetchStage, createFileSecretProvider, createSecretResolver } from '../secrets/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { TemplateLoadError, createRenderStage, createResolveStage, formatIssue, loadTemplateStore } from '../templates/index.js';
import type { LiveSet, LiveSetHolder } from './live-set.js';

export interface ComponentOptions {
  holder: LiveSetHolder;
  logger: Logger;
  metrics: Metrics;
  principalOverride?: Principal | undefined;
  /** Dry runs write audit records to stderr instead of the configured sinks. */
  auditToStderr?: boolean | undefined;
  /** Base directory for relative `file:` secret refs (the config file's directory). */
  configDir: string;
}

export interface Components {
  stages: PipelineStages;
  audit: Stage;
  auditLog: AuditLog;
  /** Loads a complete new policy + template set; throws (with file:line) when any part is bad. */
  loadLiveSet(): Promise<LiveSet>;
  /** Releases upstream pools and sinks. */
  close(): Promise<void>;
}

/** Acts as one fixed principal: `warden render --principal ns/sa` (an operator's dry run). */
function fixedPrincipalStage(principal: Principal): Stage {
  return {
    name: 'authenticate',
    run(ctx: RequestContext) {
      ctx.principal = { ...principal, audiences: [...principal.audiences] };
    },
  };
}

function buildAuthenticators(config: Config, logger: Logger): Authenticator[] {
  const out: Authenticator[] = [];
  for (const method of config.identity.methods) {
    if (method === 'dev') {
      out.push(new DevAuthenticator({ principal: config.identity.dev.principal, logger }));
    } else if (method === 'kubernetes') {
      const k = config.identity.kubernetes;
      if (!k) throw new WardenError('internal', 'identity.kubernetes is required for method kubernetes', { location: { path: 'identity.kubernetes' } });
      out.push(
        new KubernetesTokenAuthenticator({
          issuer: k.issuer,
          audiences: k.audiences,
          ...(k.jwks_url ? { jwksUrl: k.jwks_url } : {}),
          ...(k.jwks_file ? { jwksFile: k.jwks_file } : {}),
          ...(k.namespaces ? { allowedNamespaces: k.namespaces } : {}),
          clockToleranceSec: k.clock_tolerance_s,
        }),
      );
    } else {
      throw new WardenError('internal', `identity method "${method}" is not supported by this build`, {
        location: { path: 'identity.methods' },
      });
    }
  }
  return out;
}

export async function buildComponents(config: Config, opts: ComponentOptions): Promise<Components> {
  const { holder, logger } = opts;

  const authenticate = opts.principalOverride
    ? fixedPrincipalStage(opts.principalOverride)
    : createAuthenticateStage(buildAuthenticators(config, logger));

  const resolver = createSecretResolver({
    providers: [createFileSecretProvider(), createEnvSecretProvider()],
    maxEntries: config.secrets.cache.max_entries,
    baseDir: opts.configDir,
  });

  void dirname;
  throw new WardenError('internal', 'runtime integration pending');

  return {
    stages: {
      authenticate,
      resolve: createResolveStage(holder.templates),
      decide: undefined as unknown as Stage,
      fetch: createFetchStage(() => resolver),
      render: createRenderStage(),
      redact: undefined as unknown as Stage,
      forward: undefined as unknown as Stage,
      respond: undefined as unknown as Stage,
    },
    audit: undefined as unknown as Stage,
    auditLog: undefined as unknown as AuditLog,
    loadLiveSet: async () => {
      const templates = await loadTemplateStore(config.templates.paths);
      return { templates, policy: undefined as never, loadedAt: new Date().toISOString() };
    },
    close: async () => {},
  };
}

/** What a load failure was about and where, for the reload log line (file:line, never contents). */
export function describeLoadError(err: unknown): { kind: 'templates' | 'policies'; problems: string[] } {
  if (err instanceof TemplateLoadError) {
    return { kind: 'templates', problems: err.issues.map(formatIssue) };
  }
  if (isWardenError(err)) {
    const where = formatLocation(err.location);
    const kind = err.code.startsWith('template') ? 'templates' : 'policies';
    return { kind, problems: [where ? `${where}: ${err.message}` : err.message] };
  }
  return { kind: 'policies', problems: [err instanceof Error ? err.message : String(err)] };
}
