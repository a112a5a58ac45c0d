/**
 * Builds every stage from the Config: the one file that knows which module implements which
 * stage. Everything reloadable (policies, templates) is read through the LiveSetHolder's getters,
 * so the stages never need rebuilding.
 */
import { randomBytes } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import type { Config } from '../config/schema.js';
import { configRefTargets, reservedRefTargets } from '../config/secret-refs.js';
import { createAuditLog, createAuditStage, createFileSink, createStreamSink, hmacKeyLongEnough, processStreamWritable, MIN_HMAC_KEY_BYTES, type AuditLogHandle, type AuditSink } from '../audit/index.js';
import { DevAuthenticator, KubernetesTokenAuthenticator, SpiffeJwtAuthenticator, createAuthenticateStage } from '../identity/index.js';
import { WardenError, formatLocation, isWardenError } from '../pipeline/errors.js';
import type { PipelineStages } from '../pipeline/pipeline.js';
import type { Authenticator } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { Principal } from '../pipeline/types.js';
import { createDecideStage, createRegoPolicyEngine, formatInputPath, requirePassingTests, type DecisionCacheStatus } from '../policy/index.js';
import { apiKeyProblem, createForwardStage, createProviders, modelNotConfigured } from '../providers/index.js';
import { createRedactStage, createRedactor, createRespondStage, guardable, type RedactionConfig } from '../redact/index.js';
import { createEnvSecretProvider, createFetchStage, createFileSecretProvider, createSecretResolver } from '../secrets/index.js';
import { createVaultStore, type VaultStoreOptions } from '../secrets/vault/index.js';
import { checkK8sTokenFile, createK8sSecretProvider, k8sApiUrl, k8sCa, k8sNamespaces } from '../secrets/k8s/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { TemplateLoadError, createRenderStage, createResolveStage, formatIssue, formatWarning, loadTemplateStore, type TemplateLimits } from '../templates/index.js';
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
  auditLog: AuditLogHandle;
  /**
   * Loads a complete new policy + template set; throws (with file:line) when any part is bad.
   * `stop` (the runtime's shutdown) gives a load under way up, as its deadline does.
   */
  loadLiveSet(stop?: AbortSignal): Promise<LiveSet>;
  /**
   * Reads every provider's API key once. A key that cannot be read (a Secret mounted without read
   * access for Warden's user, a misspelt env name) would otherwise fail every call as
   * `secret_unavailable` while the process reports ready; `serve` checks before it binds, so the
   * start fails instead. Dry runs never call a provider and do not check. Throws WardenError
   * naming the config key and the ref, never a value.
   */
  checkProviderKeys(): Promise<void>;
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

type JwksConfig = {
  jwks_url?: string | undefined;
  jwks_file?: string | undefined;
  jwks_ca_file?: string | undefined;
  jwks_bearer_token_file?: string | undefined;
};

function jwksOptions(c: JwksConfig) {
  return {
    ...(c.jwks_url ? { jwksUrl: c.jwks_url } : {}),
    ...(c.jwks_file ? { jwksFile: c.jwks_file } : {}),
    ...(c.jwks_ca_file ? { jwksCaFile: c.jwks_ca_file } : {}),
    ...(c.jwks_bearer_token_file ? { jwksBearerTokenFile: c.jwks_bearer_token_file } : {}),
  };
}

function buildAuthenticators(config: Config, logger: Logger): Authenticator[] {
  const out: Authenticator[] = [];
  const id = config.identity;
  for (const method of id.methods) {
    if (method === 'dev') {
      out.push(new DevAuthenticator({ principal: id.dev.principal, logger }));
    } else if (method === 'kubernetes' && id.kubernetes) {
      const k = id.kubernetes;
      out.push(
        new KubernetesTokenAuthenticator({
          issuer: k.issuer,
          audiences: k.audiences,
          ...jwksOptions(k),
          ...(k.namespaces ? { allowedNamespaces: k.namespaces } : {}),
          clockToleranceSec: k.clock_tolerance_s,
          logger,
        }),
      );
    } else if (method === 'spiffe' && id.spiffe) {
      const sp = id.spiffe;
      out.push(
        new SpiffeJwtAuthenticator({
          ...(sp.trust_domains ? { trustDomains: sp.trust_domains } : {}),
          ...(sp.bundles ? { bundles: Object.fromEntries(Object.entries(sp.bundles).map(([domain, b]) => [domain, jwksOptions(b)])) } : {}),
          audiences: sp.audiences,
          ...(sp.issuer ? { issuer: sp.issuer } : {}),
          ...(sp.kubernetes_trust_domains ? { kubernetesTrustDomains: sp.kubernetes_trust_domains } : {}),
          ...jwksOptions(sp),
          clockToleranceSec: sp.clock_tolerance_s,
          logger,
        }),
      );
    } else {
      // The config schema requires the section of every listed method; this is a guard.
      throw new WardenError('internal', `identity method "${method}" has no identity.${method} section`, {
        location: { path: `identity.${method}` },
      });
    }
  }
  return out;
}

/**
 * The decide stage, then the refusal of a model the config does not route (resolve found no
 * provider for it). Here rather than in forward so the dry run (`prompt.render`, which stops
 * before forward) refuses it exactly as the call would; after the decision so a caller the policy
 * refuses learns nothing about which models are configured; before fetch so no secret is fetched
 * for a call that cannot go anywhere.
 */
function refusingUnroutedModel(decide: Stage): Stage {
  const check = (ctx: RequestContext): void => {
    if (ctx.request.action !== 'models.list' && ctx.provider === undefined) throw modelNotConfigured(ctx.request.model, ctx.decision?.models);
  };
  return {
    name: decide.name,
    run(ctx: RequestContext) {
      const running = decide.run(ctx);
      // The built-in engine decides synchronously: no promise (and no microtask hop) for it.
      if (running === undefined) return check(ctx);
      return running.then(() => check(ctx));
    },
  };
}

/**
 * The config's limits templates are held to at load (start and reload); `warden templates lint
 * --config` applies the same ones. `configDir` anchors relative `file:` refs, as for the resolver.
 */
export function templateLimits(config: Config, configDir: string): TemplateLimits {
  return {
    maxVariables: config.limits.max_variables,
    secretAccess: {
      fileRoots: config.secrets.file_roots,
      envAllow: config.secrets.env_allow,
      ...(config.secrets.vault === undefined ? {} : { vaultAllow: config.secrets.vault.allow }),
      baseDir: configDir,
      reserved: reservedRefTargets(config, configDir),
      // Unset without secrets.kubernetes: no store, nothing can be read (the fetch says "not
      // configured"), and a template set written before the store existed loads as it did.
      ...(config.secrets.kubernetes === undefined ? {} : { k8s: k8sNamespaces(config.secrets.kubernetes) }),
    },
  };
}

/**
 * The caching secret resolver with the file, env and (when configured) Vault and k8s providers;
 * relative refs resolve against `configDir`. `schemes`: the schemes of the refs it will be asked
 * for (a tool that reads one key, such as `warden redact --config`): a configured store of
 * another scheme is not built, so one that cannot be built where the tool runs (the k8s store
 * outside a pod, a Vault ca_file only the pod mounts) does not stop it. Unset: every configured
 * store is built, and checked now (serve: a store that cannot be built stops the start).
 */
export function secretResolverFor(config: Config, configDir: string, schemes?: ReadonlySet<string>) {
  // The paths and names the config's own refs read: exempt from the templates' bounds (no
  // template may name them, nor the config's credential files: templateLimits, and `reserved`
  // at each read).
  const own = configRefTargets(config, configDir);
  const ttl = config.secrets.default_ttl_ms === undefined ? {} : { ttlMs: config.secrets.default_ttl_ms };
  const vault =
    config.secrets.vault === undefined || schemes?.has('vault') === false
      ? undefined
      : createVaultStore({ ...vaultStoreOptions(config.secrets.vault, config.secrets.default_ttl_ms), access: { allow: config.secrets.vault.allow, exempt: own.vault } });
  const k8s = schemes?.has('k8s') === false ? undefined : k8sProviderFor(config.secrets.kubernetes, own.k8s);
  const resolver = createSecretResolver({
    // secrets.default_ttl_ms, when set, is the lease for backends that give none (file, env, Vault
    // KV); unset, each provider keeps its own default (files 30 s, environment 10 min, Vault 60 s).
    // The k8s store's lease is secrets.kubernetes.ttl_ms.
    providers: [
      createFileSecretProvider({ ...ttl, access: { roots: config.secrets.file_roots, exempt: own.paths, reserved: reservedRefTargets(config, configDir).paths } }),
      createEnvSecretProvider({ ...ttl, access: { allow: config.secrets.env_allow, exempt: own.names } }),
      ...(vault === undefined ? [] : [vault]),
      ...(k8s === undefined ? [] : [k8s]),
    ],
    maxEntries: config.secrets.cache.max_entries,
    fetchTimeoutMs: config.secrets.fetch_timeout_ms,
    baseDir: configDir,
  });
  if (vault === undefined && k8s === undefined) return resolver;
  // `clear` is the resolver's end (the runtime's close): the stores' connections go with it.
  const clear = resolver.clear.bind(resolver);
  resolver.clear = () => {
    clear();
    if (vault !== undefined) void vault.close().catch(() => undefined);
    if (k8s !== undefined) void k8s.close().catch(() => undefined);
  };
  return resolver;
}

/** secrets.vault → the Vault store's options; KV values' lease is secrets.default_ttl_ms when set. */
function vaultStoreOptions(v: NonNullable<Config['secrets']['vault']>, defaultTtlMs: number | undefined): VaultStoreOptions {
  return {
    address: v.address,
    caFile: v.ca_file,
    namespace: v.namespace,
    auth: v.auth.kubernetes !== undefined
      ? { kubernetes: { role: v.auth.kubernetes.role, mount: v.auth.kubernetes.mount, tokenFile: v.auth.kubernetes.token_file } }
      : { tokenFile: v.auth.token_file! },
    kvVersion: v.kv_version,
    timeoutMs: v.timeout_ms,
    maxResponseBytes: v.max_response_bytes,
    ttlMs: defaultTtlMs,
  };
}

/**
 * The `k8s://` provider when secrets.kubernetes is set: its CA, token file and API address are
 * checked now (K8sStoreConfigError stops the start, naming the key). `own`: the config's own k8s
 * refs, held to no namespace list.
 */
function k8sProviderFor(section: Config['secrets']['kubernetes'], own: ReadonlySet<string>) {
  if (section === undefined) return undefined;
  const apiUrl = k8sApiUrl(section);
  const ca = k8sCa(section);
  checkK8sTokenFile(section);
  return createK8sSecretProvider({
    apiUrl,
    ca,
    tokenFile: section.token_file,
    namespaces: k8sNamespaces(section),
    exempt: own,
    requestTimeoutMs: section.request_timeout_ms,
    maxResponseBytes: section.max_response_bytes,
    ttlMs: section.ttl_ms,
  });
}

export async function buildComponents(config: Config, opts: ComponentOptions): Promise<Components> {
  const { holder, logger } = opts;

  const authenticate = opts.principalOverride
    ? fixedPrincipalStage(opts.principalOverride)
    : createAuthenticateStage(buildAuthenticators(config, logger));

  const resolver = secretResolverFor(config, opts.configDir);

  const resolveOne = async (ref: string): Promise<string> => {
    const values = await resolver.resolve([ref]);
    const v = values.get(ref);
    if (v === undefined) throw new WardenError('secret_unavailable', `secret ${ref} is unavailable`, { details: { ref } });
    return v;
  };

  // A cached API key comes back synchronously, so a provider can write its call before forward.run() returns.
  const providers = createProviders(config, { resolveSecret: (ref) => resolver.resolveOne(ref), logger });
  opts.metrics.trackUpstreamPools(() => providers.poolLoads());
  opts.metrics.setProviders(Object.keys(config.providers));

  // Audit: the configured sinks (a dry run writes to stderr so stdout stays the result). The stream
  // sinks listen for 'error' on the process stream: an EPIPE (the reader went away) fails the
  // sink (audit_unavailable) instead of crashing the process.
  const sinks: AuditSink[] = opts.auditToStderr
    ? [createStreamSink(processStreamWritable(process.stderr), 'stderr', logger, streamSinkOptions(config))]
    : auditSinks(config, logger);
  const auditLog = createAuditLog({ sinks, logger });
  // Open the sinks and resume the hash chain now: a broken audit file must stop the start, not
  // the first request.
  // Without a configured key the prompt HMAC is keyed per process: records are still unlinkable
  // to prompt text, but HMACs cannot be compared across restarts.
  let hmacKey: string | Buffer;
  try {
    await auditLog.open();
    hmacKey = config.audit.hmac_key ? await hmacKeyAt('audit.hmac_key', config.audit.hmac_key, resolveOne) : randomBytes(32);
  } catch (err) {
    // What was opened (files, their check timers) must not outlive a start that failed.
    await auditLog.close().catch(() => undefined);
    throw err;
  }
  const audit = createAuditStage({
    log: auditLog,
    hmacKey,
    environment: config.environment.name,
    getPolicyRevision: () => holder.get()?.policy.revision ?? 'none',
    getTemplateRevision: () => holder.get()?.templates.revision ?? 'none',
    configuredModel: (model) => Object.hasOwn(config.models, model),
  });

  const redactionConfig = await redactionConfigFrom(config.redaction, resolveOne);
  const redactor = createRedactor(redactionConfig);
  // The metric's entity labels come from the redactor itself: a second hand-kept list drifts.
  opts.metrics.setRedactionEntities(redactor.reportedEntities());

  // A template's prompt is held to the size a raw prompt's body is.
  const resolveTemplate = createResolveStage(holder.templates, { maxPromptBytes: config.limits.max_body_bytes });
  // Resolve also routes the model to its provider, so the policy sees `request.provider`.
  const resolve: Stage = {
    name: 'resolve',
    run(ctx: RequestContext) {
      const provider = providers.providerNameFor(ctx.request.model);
      if (provider !== undefined) ctx.provider = provider;
      return resolveTemplate.run(ctx);
    },
  };

  const environment = { ...config.environment.labels, name: config.environment.name, cluster: config.environment.cluster };

  return {
    stages: {
      authenticate,
      resolve,
      decide: refusingUnroutedModel(
        createDecideStage({
          getEngine: holder.policy,
          environment,
          defaultProfile: config.redaction.default_profile,
          logger,
          entrypoint: config.policy.entrypoint,
          // A redaction the redactor cannot apply fails at the decision, before secrets are read.
          checkRedaction: (redaction) => void redactor.plan(redaction),
        }),
      ),
      // A placed secret the leak guard cannot recognise is refused before it is placed.
      fetch: createFetchStage(() => resolver, guardable),
      render: createRenderStage({ maxPromptBytes: config.limits.max_body_bytes }),
      redact: createRedactStage(() => redactor),
      respond: createRespondStage(),
      forward: auditGuarded(
        createForwardStage(() => providers, { upstreamTimeoutMs: config.limits.upstream_timeout_ms, metrics: opts.metrics }),
        auditLog,
        config.audit.required,
      ),
    },
    audit,
    auditLog,
    loadLiveSet: async (stop?: AbortSignal) => {
      // Both load before either is used: a reload swaps a complete set or nothing. Each part's
      // failure says which part it was (the reload metric and log line are per kind), and the
      // whole load has a deadline: a load that never ends would hold every later reload.
      const pending = new Set<LoadKind>(['templates', 'policies']);
      const part = <T>(kind: LoadKind, p: Promise<T>): Promise<T> =>
        p.then(
          (v) => (pending.delete(kind), v),
          (err: unknown) => {
            pending.delete(kind);
            throw err instanceof TemplateLoadError || isWardenError(err) ? err : new LoadFailure(kind, err);
          },
        );
      let timer: NodeJS.Timeout | undefined;
      // A template or policy load given up at the deadline stops at its next turn (each parses,
      // and the policies compile, a slice at a time): left to run, it took its CPU from requests,
      // and each later reload started another.
      const giveUp = new AbortController();
      let onStop: (() => void) | undefined;
      const deadline = new Promise<never>((_, reject) => {
        const fail = (why: string) => {
          const kind: LoadKind = pending.has('templates') ? 'templates' : 'policies';
          const failure = new LoadFailure(kind, `${kind} ${why}`);
          giveUp.abort(failure);
          reject(failure);
        };
        timer = setTimeout(() => fail(`did not load within ${config.reload.timeout_ms} ms (reload.timeout_ms)`), config.reload.timeout_ms);
        timer.unref();
        // A shutdown during a reload: the compile would run on through the drain, taking its
        // slices of the loop from the requests being drained, and then swap in a set no one uses.
        onStop = () => fail('load given up: Warden is shutting down');
        if (stop?.aborted) onStop();
        else stop?.addEventListener('abort', onStop, { once: true });
      });
      let templates: Awaited<ReturnType<typeof loadTemplateStore>>;
      let policy: Awaited<ReturnType<typeof createRegoPolicyEngine>>;
      try {
        [templates, policy] = await Promise.race([
          Promise.all([
            part('templates', loadTemplateStore(config.templates.paths, templateLimits(config, opts.configDir), giveUp.signal)),
            part(
              'policies',
              createRegoPolicyEngine({
                paths: config.policy.paths,
                entrypoint: config.policy.entrypoint,
                maxSteps: config.policy.max_steps,
                deadlineMs: config.policy.timeout_ms,
                strictBuiltinErrors: config.policy.strict_builtin_errors,
                decisionCache: { enabled: config.policy.decision_cache.enabled, maxEntries: config.policy.decision_cache.max_entries },
                onDecisionCache: (result) => opts.metrics.observePolicyCache(result),
                signal: giveUp.signal,
              }).then(async (engine) => {
                // policy.require_tests: the set serves only once its own tests pass (within the same deadline).
                if (config.policy.require_tests) {
                  const { paths, strict_builtin_errors: strictBuiltinErrors } = config.policy;
                  await requirePassingTests({ paths, revision: engine.revision, leftOut: engine.warnings, strictBuiltinErrors, signal: giveUp.signal });
                }
                return engine;
              }),
            ),
          ]),
          deadline,
        ]);
      } finally {
        clearTimeout(timer);
        if (onStop) stop?.removeEventListener('abort', onStop);
      }
      for (const w of templates.warnings) opts.logger.warn({ file: w.file, problem: w.message }, `templates: ${formatWarning(w)}`);
      // Positions and rule names only: a warning never quotes policy text.
      for (const w of policy.warnings) opts.logger.warn({ file: w.file, line: w.line }, `policies: ${w.file}:${w.line}:${w.column}: ${w.message}`);
      logDecisionCache(opts.logger, policy.decisionCache);
      return { templates, policy, loadedAt: new Date().toISOString() };
    },
    async checkProviderKeys() {
      for (const [name, pc] of Object.entries(config.providers)) {
        if (pc.kind !== 'openai' || pc.api_key === undefined) continue;
        const path = `providers.${name}.api_key`;
        const key = await resolveAt(path, pc.api_key, (ref) => resolver.resolveOne(ref));
        const problem = apiKeyProblem(key);
        // Read fine but unusable (a trailing newline of an env value): every call would fail.
        if (problem !== undefined) throw new WardenError('secret_unavailable', `the API key ${problem}`, { location: { path } });
      }
    },
    close: async () => {
      // The audit log closes even when a provider pool fails to: its fd and check timer must not
      // outlive the runtime.
      // The cached secret values go with the runtime, and the timers that would purge them.
      resolver.clear();
      try {
        await providers.close();
      } finally {
        await auditLog.close();
      }
    },
  };
}

/**
 * The configured sinks. Two entries naming one file (`a.log` and `./a.log`, resolved against the
 * config file already) would write every record twice and break the chain: refused here; the log
 * also refuses two sinks on one file by device and inode once they are open (links).
 */
function auditSinks(config: Config, logger: Logger): AuditSink[] {
  const seen = new Map<string, number>();
  return config.audit.sinks.map((s, i) => {
    const key = s === 'stdout' ? 'stdout' : resolvePath(s.file);
    const before = seen.get(key);
    if (before !== undefined) {
      throw new WardenError('audit_unavailable', `names the same ${s === 'stdout' ? 'stream' : 'file'} as audit.sinks[${before}]: every record would be written twice`, {
        location: { path: `audit.sinks[${i}]` },
      });
    }
    seen.set(key, i);
    return s === 'stdout'
      ? createStreamSink(processStreamWritable(process.stdout), 'stdout', logger, streamSinkOptions(config))
      : createFileSink(key, { logger, location: `audit.sinks[${i}].file`, required: config.audit.required });
  });
}

function streamSinkOptions(config: Config): { writeTimeoutMs: number; required: boolean } {
  return { writeTimeoutMs: config.audit.write_timeout_ms, required: config.audit.required };
}

/**
 * With a required audit, nothing may go upstream while the audit log cannot be written (a failed
 * sink links no record): the forward stage refuses first. One flag read per request.
 */
function auditGuarded(forward: Stage, auditLog: AuditLogHandle, required: boolean): Stage {
  if (!required) return forward;
  return {
    name: forward.name,
    run(ctx: RequestContext) {
      if (!auditLog.available()) throw new WardenError('audit_unavailable', 'the audit log is unavailable');
      return forward.run(ctx);
    },
  };
}

/**
 * Once per policy load: whether decisions are cached and, if not, why (the reason names a rule
 * location and a construct, never input or data values), so a policy change that turns the
 * cache off is visible in the log.
 */
function logDecisionCache(logger: Logger, status: DecisionCacheStatus): void {
  if (status.enabled) {
    logger.info(
      { decision_cache: true, max_entries: status.maxEntries, input_paths: status.paths.map(formatInputPath) },
      `policy decision cache on: keyed on ${status.paths.length} input path(s)`,
    );
  } else {
    logger.info({ decision_cache: false, reason: status.reason }, `policy decision cache off: ${status.reason ?? 'no reason given'}`);
  }
}

/** The YAML (snake_case) redaction section → the redaction module's RedactionConfig. */
export async function redactionConfigFrom(
  r: Config['redaction'],
  resolveSecret: (ref: string) => Promise<string>,
): Promise<RedactionConfig> {
  const out: RedactionConfig = { defaultProfile: r.default_profile };
  if (r.profiles) out.profiles = r.profiles as unknown as NonNullable<RedactionConfig['profiles']>;
  if (r.custom_entities) out.customEntities = r.custom_entities as unknown as NonNullable<RedactionConfig['customEntities']>;
  if (r.allow) out.allow = r.allow;
  if (r.phone_regions) out.phoneRegions = r.phone_regions;
  if (r.max_hold_back !== undefined) out.maxHoldBack = r.max_hold_back;
  if (r.phone_validation) out.phoneValidation = r.phone_validation;
  if (r.stream_secret_hold) out.streamSecretHold = r.stream_secret_hold;
  if (r.hmac_key) out.hashKey = Buffer.from(await hmacKeyAt('redaction.hmac_key', r.hmac_key, resolveSecret), 'utf8');
  return out;
}

/**
 * The secret a config key (`path`) names, resolved at start: a failure carries the key as its
 * location (printed once, before the code), not in the message too.
 */
async function resolveAt(path: string, ref: string, resolveOne: (ref: string) => string | Promise<string>): Promise<string> {
  try {
    return await resolveOne(ref);
  } catch (err) {
    if (isWardenError(err)) {
      if (err.location !== undefined) throw err;
      throw new WardenError(err.code, err.message, { cause: err, location: { path }, details: err.details });
    }
    throw new WardenError('secret_unavailable', `the secret ${ref} could not be read`, { cause: err, location: { path } });
  }
}

type LoadKind = 'templates' | 'policies';

/** A load that failed without a Warden error (or ran out of time), tagged with the part it was. */
export class LoadFailure extends Error {
  readonly kind: LoadKind;
  constructor(kind: LoadKind, cause: unknown) {
    super(typeof cause === 'string' ? cause : `${kind} failed to load: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'LoadFailure';
    this.kind = kind;
  }
}

/**
 * The secret an `hmac_key` names (`path`: audit.hmac_key, redaction.hmac_key), which must be at
 * least MIN_HMAC_KEY_BYTES of UTF-8: the redaction key's hashes go upstream, and a short key could
 * be found from one known value and its hash. The config text is valid (a ref); the secret's value
 * is what is wrong, so the error is the secret's, with the key path, the ref and no value (not
 * even its length).
 */
async function hmacKeyAt(path: string, ref: string, resolveOne: (ref: string) => Promise<string>): Promise<string> {
  const location = { path };
  const key = await resolveAt(location.path, ref, resolveOne);
  if (!hmacKeyLongEnough(key)) {
    throw new WardenError('secret_unavailable', `the secret ${ref} is shorter than ${MIN_HMAC_KEY_BYTES} bytes (UTF-8), too short for an HMAC key`, { location });
  }
  return key;
}

/** What a load failure was about and where, for the reload log line (file:line, never contents). */
export function describeLoadError(err: unknown): { kind: LoadKind; problems: string[] } {
  if (err instanceof LoadFailure) return { kind: err.kind, problems: [err.message] };
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
