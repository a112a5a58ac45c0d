/**
 * The configuration schema. Every key has a default that is safe on its own: listeners on
 * loopback, no identity method (every request is rejected until one is configured), no policy
 * (every request is denied), audit required (fail closed), the `echo` provider only (nothing
 * leaves the machine). Objects are strict so that a misspelt key is an error, not a silent no-op;
 * `redaction` is the one loose object because the redaction module owns its full shape.
 */
import { z } from 'zod';
import { DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_JSON_VALUES, MAX_JSON_DEPTH_CEILING, MIN_MAX_JSON_VALUES } from '../pipeline/json-depth.js';
import { MODEL_NAME_RULE, isModelName } from '../pipeline/identifiers.js';
import { SECRET_SCHEMES, SecretRefError, parseSecretRef } from '../secrets/index.js';
import { formatListen, isLoopbackHost, parseListen, sharedAddress, type ListenAddress } from './listen.js';
import { shownName } from './locate.js';
import { anchoredAllowPattern, re2PatternProblem } from '../redact/custom.js';
import { MIB } from '../pipeline/sizes.js';
import {
  DEFAULT_CA_FILE,
  DEFAULT_K8S_MAX_RESPONSE_BYTES,
  DEFAULT_K8S_REQUEST_TIMEOUT_MS,
  DEFAULT_TOKEN_FILE,
  isK8sNamespace,
  K8S_SECRET_TTL_MS,
} from '../secrets/k8s/settings.js'; // not the folder's door: that loads undici, which a config load needs not

const listenAddress = (fallback: string) =>
  z
    .string()
    .transform((text, ctx): ListenAddress => {
      const parsed = parseListen(text);
      if (typeof parsed === 'string') {
        ctx.issues.push({ code: 'custom', message: parsed, input: text });
        return z.NEVER;
      }
      return parsed;
    })
    .default(parseListen(fallback) as ListenAddress);

/**
 * A secret reference, in the one grammar the secrets module parses (`env://NAME`,
 * `file:///abs/path`, `file:relative/path` — relative to the config file's directory —,
 * `vault://…`, `k8s://…`). A literal value is refused so that a key pasted into the config file
 * is caught at load, and no message ever repeats the value.
 */
export const secretRef = z.string().check((ctx) => {
  try {
    parseSecretRef(ctx.value);
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: secretRefProblem(err), input: ctx.value });
  }
});

function secretRefProblem(err: unknown): string {
  if (!(err instanceof SecretRefError)) return 'is not a valid secret ref';
  switch (err.code) {
    case 'ref_empty':
    case 'ref_not_uri':
      return 'must be a secret ref such as env://NAME, file:relative/path or file:///abs/path, not a literal value';
    case 'ref_unknown_scheme':
      // The "scheme" of a pasted literal (`sk-live:...`) could be part of the secret: not repeated.
      return `must use a secret ref scheme: ${SECRET_SCHEMES.join(', ')}`;
    default:
      return `is not a valid secret ref: ${err.reason}`;
  }
}

const nonEmpty = z.string().min(1, { error: 'must not be empty' });
const positiveInt = z.int().positive();

/**
 * Largest duration Node's timers take (2^31-1 ms, about 24.8 days). A larger value is not "a long
 * time": setTimeout turns it into 1 ms, so every upstream call would time out at once.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;
const durationMessage = { error: `must be at most ${MAX_DURATION_MS} ms (about 24.8 days, the longest timer Node.js supports)` };
/** A duration in ms, at least `min` (1 unless a 0 is meaningful) and at most MAX_DURATION_MS. */
const durationMs = (min: 0 | 1 = 1) => (min === 0 ? z.int().min(0) : z.int().positive()).max(MAX_DURATION_MS, durationMessage);

/** What is wrong with listener address `a`, given that `b` (listen.`bName`) holds `shared` too. */
function listenCollision(a: ListenAddress, b: ListenAddress, bName: string, shared: string): string {
  if (a.host === b.host) return `uses the same address as listen.${bName}`;
  return `${formatListen(a)} overlaps listen.${bName} (${formatListen(b)}): both would listen on port ${a.port} of ${shared}`;
}

const ListenSchema = z
  .strictObject({
    http: listenAddress('127.0.0.1:8700'),
    grpc: listenAddress('127.0.0.1:8701'),
    admin: listenAddress('127.0.0.1:8702'),
    /** Optional Unix-domain sockets for the app listeners (served in addition to TCP). */
    http_socket: nonEmpty.optional(),
    grpc_socket: nonEmpty.optional(),
  })
  .check((ctx) => {
    // Two listeners on one fixed port of one address would fail at bind time; say which here. The
    // addresses are compared as what they bind (localhost, wildcards), not as strings.
    const v = ctx.value;
    const names = ['http', 'grpc', 'admin'] as const;
    for (const [i, name] of names.entries()) {
      for (const other of names.slice(0, i)) {
        const shared = sharedAddress(v[name], v[other]);
        if (shared === undefined) continue;
        // Both views: the loader reports the one whose value came from the environment, if any.
        const params = { other: `listen.${other}`, otherMessage: listenCollision(v[other], v[name], name, shared) };
        ctx.issues.push({ code: 'custom', message: listenCollision(v[name], v[other], other, shared), input: formatListen(v[name]), path: [name], params });
        break;
      }
    }
    if (v.http_socket !== undefined && v.http_socket === v.grpc_socket) {
      ctx.issues.push({ code: 'custom', message: 'uses the same path as listen.http_socket', input: v.grpc_socket, path: ['grpc_socket'] });
    }
  });

const EnvironmentSchema = z.strictObject({
  /** Defaults to `production` so that a policy that relaxes rules for `development` never does so by accident. */
  name: nonEmpty.default('production'),
  cluster: nonEmpty.default('unknown'),
  /** Extra labels merged into the policy input's `environment` (beside name and cluster, never over them). */
  labels: z
    .record(
      z.string().refine((k) => k !== 'name' && k !== 'cluster', { error: 'is reserved: input.environment.name and .cluster come from environment.name and environment.cluster' }),
      z.string(),
    )
    .default({}),
});

/** Where signing keys come from; shared by the JWT-based methods. */
const jwksFields = {
  jwks_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  jwks_file: nonEmpty.optional(),
  /** PEM CA bundle for an https jwks_url signed by a private CA (the cluster CA in-cluster). */
  jwks_ca_file: nonEmpty.optional(),
  /** File with a bearer token sent to jwks_url (re-read on each fetch: projected tokens rotate). */
  jwks_bearer_token_file: nonEmpty.optional(),
  /** Clock skew tolerated on exp/nbf/iat. */
  clock_tolerance_s: z.int().min(0).max(300).default(5),
};

/** Exactly one key source; checked even when other keys of the section are wrong (one pass, every problem). */
const oneJwksSource = [
  (v: { jwks_url?: string; jwks_file?: string }, ctx: z.RefinementCtx) => {
    if ((v.jwks_url === undefined) === (v.jwks_file === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'set exactly one of jwks_url or jwks_file', input: v, path: [] });
    }
  },
  { when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null },
] as const;

const issuerField = z.union([nonEmpty, z.array(nonEmpty).min(1)], {
  error: (iss) => (iss.input === undefined ? 'is required' : 'must be a string or a list of strings'),
});

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

/** A string held to one of Kubernetes' name rules; empty is "must not be empty", as elsewhere. */
function kubernetesName(valid: (name: string) => boolean, message: string) {
  return z.string().check((ctx) => {
    if (ctx.value === '') ctx.issues.push({ code: 'custom', message: 'must not be empty', input: ctx.value });
    else if (!valid(ctx.value)) ctx.issues.push({ code: 'custom', message, input: ctx.value });
  });
}

/** A namespace name as Kubernetes allows it (a DNS-1123 label). */
const kubernetesNamespace = kubernetesName(
  (n) => n.length <= 63 && DNS1123_LABEL.test(n),
  "must be a Kubernetes namespace name (a DNS-1123 label): at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
);

/** A service account name as Kubernetes allows it (a DNS-1123 subdomain). */
const kubernetesServiceAccount = kubernetesName(
  (n) => n.length <= 253 && n.split('.').every((label) => DNS1123_LABEL.test(label)),
  "must be a Kubernetes service account name (a DNS-1123 subdomain): at most 253 characters, labels of lower-case letters, digits and '-' separated by '.', each starting and ending with a letter or digit",
);

const KubernetesIdentitySchema = z
  .strictObject({
    /** Accepted `iss` value(s) of projected service-account tokens. */
    issuer: issuerField,
    audiences: z.array(nonEmpty).min(1, { error: 'must list at least one audience' }),
    /**
     * When set, only service accounts in these namespaces are accepted. Held to Kubernetes' rule:
     * a name no token can carry ("Prod ", "a/b") would quietly shut out the workload it names.
     */
    namespaces: z.array(kubernetesNamespace).optional(),
    ...jwksFields,
  })
  .superRefine(...oneJwksSource);

/**
 * The dev principal stands in for a real workload, so it is held to the names Kubernetes allows
 * (a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain): a policy written
 * against it then also fits the cluster, and no ':' or '/' can make its subject
 * (`system:serviceaccount:<ns>:<sa>`) or `ns/sa` read as another principal.
 */
const DevIdentitySchema = z.strictObject({
  principal: z
    .strictObject({
      namespace: kubernetesNamespace.default('dev'),
      service_account: kubernetesServiceAccount.default('local'),
    })
    .prefault({}),
});

const trustDomain = z.string().regex(/^[a-z0-9._-]{1,255}$/, { error: 'must be a trust domain name (lower-case letters, digits, ".", "-", "_")' });

/** One trust domain's key set (its SPIFFE bundle). */
const SpiffeBundleSchema = z
  .strictObject({
    jwks_url: jwksFields.jwks_url,
    jwks_file: jwksFields.jwks_file,
    jwks_ca_file: jwksFields.jwks_ca_file,
    jwks_bearer_token_file: jwksFields.jwks_bearer_token_file,
  })
  .superRefine(...oneJwksSource);

const SpiffeIdentitySchema = z
  .strictObject({
    /** The trust domain the section's own key set verifies (one: see below). */
    trust_domains: z.array(trustDomain).min(1, { error: 'must list at least one trust domain' }).optional(),
    /** Trust domains, each with its own key set. */
    bundles: z.record(trustDomain, SpiffeBundleSchema).optional(),
    audiences: z.array(nonEmpty).min(1, { error: 'must list at least one audience' }),
    /** Optional accepted `iss` value(s); JWT-SVIDs need not carry one. */
    issuer: issuerField.optional(),
    /** Trust domains whose `/ns/<ns>/sa/<sa>` paths name this cluster's service accounts. */
    kubernetes_trust_domains: z.array(trustDomain).optional(),
    ...jwksFields,
  })
  .superRefine((v, ctx) => {
    if (Array.isArray(v.kubernetes_trust_domains)) {
      const accepted = new Set([...(Array.isArray(v.trust_domains) ? v.trust_domains : []), ...(v.bundles && typeof v.bundles === 'object' ? Object.keys(v.bundles) : [])]);
      v.kubernetes_trust_domains.forEach((d, i) => {
        if (!accepted.has(d)) ctx.addIssue({ code: 'custom', message: `${d} is not an accepted trust domain (trust_domains or bundles)`, input: d, path: ['kubernetes_trust_domains', i] });
      });
    }
    const sectionKeys = v.jwks_url !== undefined || v.jwks_file !== undefined || v.jwks_ca_file !== undefined || v.jwks_bearer_token_file !== undefined;
    if (v.bundles !== undefined) {
      if (typeof v.bundles === 'object' && v.bundles !== null && Object.keys(v.bundles).length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one trust domain', input: v.bundles, path: ['bundles'] });
      if (v.trust_domains !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'set trust_domains (with the section\'s key set) or bundles, not both', input: v.trust_domains, path: ['trust_domains'] });
      }
      if (sectionKeys) ctx.addIssue({ code: 'custom', message: 'with bundles, each trust domain\'s key set goes under its bundle', input: v, path: [] });
      return;
    }
    oneJwksSource[0](v, ctx);
    if (v.trust_domains === undefined) ctx.addIssue({ code: 'custom', message: 'is required (or bundles: a key set per trust domain)', input: v, path: ['trust_domains'] });
    else if (Array.isArray(v.trust_domains) && v.trust_domains.length > 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'one key set cannot serve several trust domains (any of them could sign for the others): give each its own under identity.spiffe.bundles',
        input: v.trust_domains,
        path: ['trust_domains'],
      });
    }
    // Run even when other keys are wrong (one pass, every problem), as oneJwksSource does.
  }, oneJwksSource[1]);

const IdentitySchema = z
  .strictObject({
    /** Tried in order; an empty list rejects every request. */
    methods: z.array(z.enum(['kubernetes', 'dev', 'spiffe'])).default([]),
    kubernetes: KubernetesIdentitySchema.optional(),
    dev: DevIdentitySchema.optional(),
    spiffe: SpiffeIdentitySchema.optional(),
  })
  .check((ctx) => {
    const v = ctx.value;
    const seen = new Set<string>();
    v.methods.forEach((m, i) => {
      if (seen.has(m)) ctx.issues.push({ code: 'custom', message: `method "${m}" is listed twice`, input: m, path: ['methods', i] });
      // `dev` answers every request (a local caller is its principal, any other is refused): a
      // method after it is never tried, so a pod's token there would be ignored or refused.
      else if (m === 'dev' && v.methods.slice(i + 1).some((next) => next !== 'dev')) {
        ctx.issues.push({
          code: 'custom',
          message: 'method "dev" must come last: it answers every request (a local caller is its principal, any other caller is refused), so the methods after it would never be tried',
          input: m,
          path: ['methods', i],
        });
      }
      seen.add(m);
      if (m === 'kubernetes' && !v.kubernetes) {
        ctx.issues.push({ code: 'custom', message: 'method "kubernetes" needs an identity.kubernetes section', input: m, path: ['methods', i] });
      }
      if (m === 'spiffe' && !v.spiffe) {
        ctx.issues.push({ code: 'custom', message: 'method "spiffe" needs an identity.spiffe section', input: m, path: ['methods', i] });
      }
    });
  })
  .transform((v) => ({
    ...v,
    // `dev` has a harmless default principal; it only matters when listed in methods.
    dev: v.dev ?? { principal: { namespace: 'dev', service_account: 'local' } },
  }));

/** `warden/decision`: names (letters, digits, `_`) joined by `/`. */
const RULE_PATH = /^[A-Za-z_]\w*(\/[A-Za-z_]\w*)*$/;

const PolicySchema = z.strictObject({
  /**
   * `rego` is the built-in engine. `wasm` (OPA bundles built with `opa build -t wasm`) is the
   * planned production engine; until it ships, asking for it is a config error rather than a
   * silent fall-back to another engine.
   */
  engine: z
    .enum(['rego', 'wasm'])
    .default('rego')
    .refine((e) => e === 'rego', {
      error: 'the wasm engine is not available in this build yet; use engine: rego (the built-in Rego engine)',
    }),
  /** Directories or files with `.rego` modules and JSON/YAML data. Empty = deny all. */
  paths: z.array(nonEmpty).default([]),
  /**
   * The rule path below `data`, slash-separated as in a bundle manifest. OPA's `opa eval` form
   * `data.warden.decision` is refused with the form to write (one spelling in configs, logs and
   * audit); that the path names a rule is checked where the policies load.
   */
  entrypoint: z
    .string()
    .check((ctx) => {
      if (RULE_PATH.test(ctx.value)) return;
      const dotted = /^data\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$/.exec(ctx.value);
      const message = dotted
        ? `must be the slash-separated rule path below data: write ${dotted[1]!.replaceAll('.', '/')}`
        : 'must be a slash-separated rule path such as warden/decision';
      ctx.issues.push({ code: 'custom', message, input: ctx.value });
    })
    .default('warden/decision'),
  /** Evaluation budget: a policy that exceeds it is a policy_error (deny), not a hung request. */
  max_steps: positiveInt.default(100_000),
  /**
   * Wall-clock budget for one evaluation. It counts time the process was not running too (a
   * sidecar throttled by its CPU limit stops for up to a CFS period, 100 ms, and a loaded CI host
   * for tens of ms), and a stall must not deny a call a ~10 µs policy would allow: max_steps and
   * the metered built-ins bound the work itself, this only what they cannot see.
   */
  timeout_ms: durationMs().default(250),
  /**
   * A built-in that fails (`1 / 0`, `to_number("x")`, an operand of the wrong type) ends the
   * evaluation with its error, a policy_error (deny). `false` is OPA's default: the call is
   * undefined, and a rule that negates it (`not blocked`) then allows.
   */
  strict_builtin_errors: z.boolean().default(true),
  /**
   * Each load (the start and every reload) also runs the set's `*_test.rego` tests, as
   * `warden policy test` does, and refuses the set when one fails or errors, or when there is
   * none: a set that compiles but decides wrongly must not serve (src/policy/load-tests.ts).
   */
  require_tests: z.boolean().default(false),
  /**
   * Reuse a decision for inputs that agree on every field the policy reads. Applies only when
   * the policy's analysis proves that safe (README, "Decision cache"); `enabled: false` turns it
   * off regardless.
   */
  decision_cache: z
    .strictObject({
      enabled: z.boolean().default(true),
      max_entries: z
        .int()
        .min(1, { error: 'must be at least 1 (use enabled: false to turn the cache off)' })
        .max(1_000_000, { error: 'must be at most 1000000 (each entry holds a decision)' })
        .default(10_000),
    })
    .prefault({}),
});

const TemplatesSchema = z.strictObject({
  paths: z.array(nonEmpty).default([]),
});

/** A Vault path of plain segments (a namespace, an auth mount): no `.` or `..` segment, which would climb out. */
const vaultPath = (message: string, trailingSlash: boolean) =>
  z.string().check((ctx) => {
    const text = trailingSlash && ctx.value.endsWith('/') ? ctx.value.slice(0, -1) : ctx.value;
    const segments = text.split('/');
    if (!segments.every((s) => /^[A-Za-z0-9_.-]+$/.test(s) && s !== '.' && s !== '..')) ctx.issues.push({ code: 'custom', message, input: ctx.value });
  });

/** A Vault address: an http(s) origin; plain http only to loopback unless allow_http says so. */
const vaultAddress = z.string().check((ctx) => {
  let url: URL;
  try {
    url = new URL(ctx.value);
  } catch {
    ctx.issues.push({ code: 'custom', message: 'must be an https URL such as https://vault.example:8200', input: ctx.value });
    return;
  }
  // The message never quotes the URL: user:password@ in it would be echoed.
  const problem =
    url.protocol !== 'https:' && url.protocol !== 'http:' ? 'must be an https URL such as https://vault.example:8200'
    : url.username !== '' || url.password !== '' ? 'must not carry credentials (user:password@): Warden authenticates with secrets.vault.auth'
    : url.pathname !== '/' || url.search !== '' || url.hash !== '' ? 'must be an origin (scheme, host and port) without a path, query or fragment: Warden adds /v1/...'
    : undefined;
  if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
});

const VaultSchema = z
  .strictObject({
    /** Vault's address, e.g. `https://vault.vault.svc:8200`. */
    address: vaultAddress,
    /** Plain http to a host other than loopback: the token and the secrets would travel unencrypted. */
    allow_http: z.boolean().default(false),
    /** PEM CA bundle for a Vault certificate signed by a private CA. */
    ca_file: nonEmpty.optional(),
    /** Vault Enterprise namespace (sent as X-Vault-Namespace). */
    namespace: vaultPath('must be a Vault namespace path such as team or parent/team', true).optional(),
    /** How Warden gets its Vault token: exactly one of token_file or kubernetes. */
    auth: z
      .strictObject({
        /** A file holding a Vault token (re-read when it changes). */
        token_file: nonEmpty.optional(),
        kubernetes: z
          .strictObject({
            role: nonEmpty,
            mount: vaultPath('must be an auth mount path such as kubernetes', false).default('kubernetes'),
            /** The service-account token sent to the login (re-read at each login: projected tokens rotate). */
            token_file: nonEmpty.default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
          })
          .optional(),
      })
      .check((ctx) => {
        if ((ctx.value.token_file === undefined) === (ctx.value.kubernetes === undefined)) {
          ctx.issues.push({ code: 'custom', message: 'set exactly one of token_file or kubernetes', input: ctx.value });
        }
      }),
    /** The KV secrets engine's version on every mount refs name. */
    kv_version: z.union([z.literal(1), z.literal(2)], { error: 'must be 1 or 2' }).default(2),
    /** Deadline for one request to Vault (a login or a read). */
    timeout_ms: durationMs().default(5_000),
    /** Largest answer read from Vault; a larger one is refused. */
    max_response_bytes: positiveInt.max(16 * MIB, { error: `must be at most ${16 * MIB} (16 MiB)` }).default(MIB),
    /**
     * Secrets a template's `vault:` refs may name: `mount/path` exactly, or a prefix ending in `*`
     * (`secret/templates/*`). Unset or empty: templates may name no `vault:` ref. The config's
     * own refs (api_key, hmac_key) are not held to it.
     */
    allow: z
      .array(z.string().regex(/^(?:[^*\s/][^*\s]*\*?|\*)$/, { error: 'must be a mount/path, or a prefix of one followed by * (secret/templates/*; * alone allows every secret)' }))
      .default([]),
  })
  .check((ctx) => {
    const v = ctx.value;
    if (typeof v.address !== 'string' || v.allow_http === true) return;
    let url: URL;
    try {
      url = new URL(v.address);
    } catch {
      return;
    }
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
      ctx.issues.push({
        code: 'custom',
        message: 'uses plain http to a host that is not loopback: the Vault token and every secret would travel unencrypted (use https, or set allow_http: true when a mesh encrypts the hop)',
        input: v.address,
        path: ['address'],
      });
    }
  });

/**
 * secrets.kubernetes: the `k8s://namespace/name#key` store (README, "Kubernetes Secrets"). Absent:
 * no k8s ref is served, and templates may name none. Every key has an in-cluster default.
 */
const KubernetesSecretsSchema = z.strictObject({
  /** The API server; unset: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (in a pod). */
  api_url: z
    .url({ protocol: /^https$/, error: 'must be an https URL such as https://kubernetes.default.svc (the service-account token is never sent in clear)' })
    // Refused rather than dropped (the message never quotes the URL, which would echo the password).
    .refine((u) => !hasCredentials(u), { error: 'must not carry credentials (user:password@): Warden sends the token of token_file' })
    .refine((u) => !/[?#]/.test(u), { error: 'must not carry a query or fragment' })
    .optional(),
  /** Warden's service-account token, re-read before every request (the kubelet rotates it). */
  token_file: nonEmpty.default(DEFAULT_TOKEN_FILE),
  /** The CA the API server's certificate must chain to (the cluster CA). */
  ca_file: nonEmpty.default(DEFAULT_CA_FILE),
  /** Namespaces a template's k8s refs may name; unset: Warden's own (the pod's service-account namespace). */
  namespaces: z.array(z.string().refine(isK8sNamespace, { error: 'must be a namespace name (a DNS-1123 label of at most 63 characters)' })).optional(),
  request_timeout_ms: durationMs().default(DEFAULT_K8S_REQUEST_TIMEOUT_MS),
  max_response_bytes: positiveInt.min(1024, { error: 'must be at least 1024' }).max(64 * MIB, { error: `must be at most ${64 * MIB} (64 MiB)` }).default(DEFAULT_K8S_MAX_RESPONSE_BYTES),
  /** Lease of a value read from the API; 0 reads it for every request. */
  ttl_ms: durationMs(0).default(K8S_SECRET_TTL_MS),
});

const SecretsSchema = z.strictObject({
  cache: z
    .strictObject({
      // Bounded: lru-cache allocates room for `max` entries up front (1e9 ran out of heap,
      // 2^32 was "Invalid array length"). Each entry is a ref a template names, a short list.
      max_entries: positiveInt.max(100_000, { error: 'must be at most 100000 (each entry is a secret ref a template names)' }).default(1000),
    })
    .prefault({}),
  /**
   * Lease for refs whose backend does not give one (file://, env://). Unset: 30 s for files
   * (mounted secrets rotate in place), 10 min for environment variables (fixed for the process).
   * 0 turns caching off.
   */
  default_ttl_ms: durationMs(0).optional(),
  /** Deadline for one secret fetch; past it the fetch is secret_unavailable. */
  fetch_timeout_ms: durationMs().default(5_000),
  /**
   * Directories a template's `file:` refs may point under (symlinks and `..` resolved), relative
   * ones against the config file's directory. Unset or empty: templates may name no `file:` ref.
   * The config's own refs (api_key, hmac_key) are not held to it.
   */
  file_roots: z.array(nonEmpty.refine((p) => !p.includes('\0'), { error: 'must not hold a NUL' })).default([]),
  /**
   * Environment variables a template's `env:` refs may name: names, or prefixes ending in `*`
   * (`WARDEN_TPL_*`; `*` alone allows every variable). Unset or empty: no `env:` ref in templates.
   */
  env_allow: z
    .array(z.string().regex(/^(?:[A-Za-z_][A-Za-z0-9_]*\*?|\*)$/, { error: 'must be a variable name, or a prefix of one followed by * (WARDEN_TPL_*)' }))
    .default([]),
  /** HashiCorp Vault (`vault://` refs). Unset: such refs are secret_unavailable, "not configured". */
  vault: VaultSchema.optional(),
  /** The Kubernetes Secret store (`k8s://` refs); absent: not configured. */
  kubernetes: KubernetesSecretsSchema.optional(),
});

const EchoProviderSchema = z.strictObject({ kind: z.literal('echo') });

/** Whether a URL carries a user name or password (`user:password@host`); false for anything unparsable. */
function hasCredentials(url: string): boolean {
  try {
    const { username, password } = new URL(url);
    return username !== '' || password !== '';
  } catch {
    return false;
  }
}

const OpenAIProviderSchema = z.strictObject({
  kind: z.literal('openai'),
  base_url: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://api.openai.com/v1' })
    // The pool connects to the URL's origin, which drops user:password@: refused rather than kept
    // unused in the config (the message never quotes the URL, which would echo the password).
    .refine((u) => !hasCredentials(u), {
      error: 'must not carry credentials (user:password@): they are never sent; put the API key in api_key as a secret ref',
      abort: true,
    }),
  /** Secret ref resolved by Warden; the application never holds the key. Optional for keyless local upstreams. */
  api_key: secretRef.optional(),
  timeouts: z
    .strictObject({
      connect_ms: durationMs().default(5_000),
      headers_ms: durationMs().default(60_000),
      body_ms: durationMs().default(300_000),
    })
    .prefault({}),
  pool: z
    .strictObject({
      /**
       * Most connections, so most calls at once, to this upstream; calls past it wait for one
       * (counted in warden_upstream_queued, within upstream_timeout_ms). Unset: limits.max_in_flight,
       * so the only bound is the one that answers `overloaded` at once.
       */
      connections: positiveInt.max(1_000_000).optional(),
      /**
       * How long an idle connection is kept for reuse when the upstream sends no Keep-Alive hint:
       * below the upstream's own idle timeout, or a call sent as it closes the connection fails.
       */
      keep_alive_ms: durationMs().default(4_000), // DEFAULT_KEEP_ALIVE_MS in providers/openai.ts
    })
    .prefault({}),
});

export const ProviderSchema = z.discriminatedUnion('kind', [EchoProviderSchema, OpenAIProviderSchema]);

/**
 * Snake-case mirror of the redaction module's RedactionConfig (src/redact/types.ts); only the
 * shape is checked here, the redaction module validates the content (patterns, entity names).
 */
const redactionMode = z.enum(['mask', 'hash', 'tokenize', 'block', 'allow']);
/** A detector score: 0..1 (a threshold of 85 would let every finding through). */
const score = z.number().min(0, { error: 'must be between 0 and 1' }).max(1, { error: 'must be between 0 and 1' });

/** One profile: what it detects and how. Strict: a mistyped key must not quietly change nothing. */
const RedactionProfileSchema = z.strictObject({
  entities: z.array(nonEmpty),
  mode: redactionMode.optional(),
  settings: z.record(z.string(), z.strictObject({ mode: redactionMode.optional(), threshold: score.optional() })).optional(),
});

/** A custom entity (RE2 pattern and/or dictionary); the redactor checks the pattern itself. */
const CustomEntitySchema = z
  .strictObject({
    name: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, { error: 'must be an upper-case entity name such as CUSTOMER_ID' }),
    pattern: nonEmpty.optional(),
    flags: z.string().regex(/^[imsu]*$/, { error: 'may hold only the RE2 flags i, m, s, u' }).optional(),
    validator: z.enum(['luhn', 'mod97', 'mod11', 'verhoeff', 'none']).optional(),
    context: z.array(nonEmpty).optional(),
    dictionary: z.array(nonEmpty).optional(),
    score: score.optional(),
  })
  // Checked here, not only when the redactor compiles it, so the error has the file's line and
  // column like any config problem (the message names RE2's error kind, never the pattern).
  .superRefine((v, ctx) => {
    const problem = typeof v.pattern === 'string' ? re2PatternProblem(v.pattern, typeof v.flags === 'string' ? v.flags : '') : undefined;
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: v.pattern, path: ['pattern'] });
  });

/** An allow pattern must compile alone and anchored, as the allow-list runs it (redact/custom.ts). */
const allowPattern = z.string().superRefine((p, ctx) => {
  const problem = re2PatternProblem(p) ?? re2PatternProblem(anchoredAllowPattern(p), 'i');
  if (problem) ctx.addIssue({ code: 'custom', message: problem, input: p });
});

const RedactionSchema = z.strictObject({
  default_profile: nonEmpty.default('standard'),
  profiles: z.record(z.string(), RedactionProfileSchema).optional(),
  custom_entities: z.array(CustomEntitySchema).optional(),
  allow: z
    .strictObject({
      literals: z.array(z.string()).optional(),
      patterns: z.array(allowPattern).optional(),
    })
    .optional(),
  /** Key of the keyed hash used by `hash` mode (a secret ref). */
  hmac_key: secretRef.optional(),
  phone_regions: z.array(z.string().regex(/^[A-Z]{2}$/, { error: 'must be a two-letter region code such as US' })).optional(),
  max_hold_back: positiveInt.optional(),
  /** `valid` (default): numbers in assigned ranges only; `possible`: any number of a plausible length. */
  phone_validation: z.enum(['valid', 'possible']).optional(),
  /**
   * What a stream that guards a secret holds back for the leak guard: `window` (default) a fixed
   * window, `prefix` only a tail that could begin a secret (earlier first token, chunk-boundary
   * oracle: README Status and limits).
   */
  stream_secret_hold: z.enum(['window', 'prefix']).optional(),
});

const AuditSinkSchema = z.union([
  z.literal('stdout'),
  z.strictObject({ file: nonEmpty }),
], { error: 'must be "stdout" or { file: PATH }' });

const AuditSchema = z.strictObject({
  sinks: z.array(AuditSinkSchema).min(1, { error: 'needs at least one sink: "stdout" or { file: PATH }' }).default(['stdout']),
  /** Key for the prompt HMAC in audit records; without it a per-process random key is used. */
  hmac_key: secretRef.optional(),
  /** true: a request whose audit record cannot be written fails with audit_unavailable. */
  required: z.boolean().default(true),
  /**
   * How long a record may wait for the stdout sink's reader before the sink counts as failed
   * (audit_unavailable, /readyz 503) until the stream drains.
   */
  write_timeout_ms: durationMs().default(5000),
});

const LimitsSchema = z.strictObject({
  max_body_bytes: positiveInt.default(MIB),
  max_header_bytes: positiveInt.default(16 * 1024),
  max_variables: positiveInt.default(64),
  max_variable_length: positiveInt.default(32 * 1024),
  max_json_depth: positiveInt.max(MAX_JSON_DEPTH_CEILING).default(DEFAULT_MAX_JSON_DEPTH),
  /** Most values (arrays, objects, entries between commas) in one large JSON text of a request. */
  max_json_values: positiveInt.min(MIN_MAX_JSON_VALUES).default(DEFAULT_MAX_JSON_VALUES),
  max_in_flight: positiveInt.max(1_000_000).default(1024),
  client_timeout_ms: durationMs().default(120_000),
  /**
   * How long a connection with no request or call under way is kept open (HTTP keep-alive, gRPC
   * max_connection_idle): a bound on what idle clients hold, above a typical client pool's own.
   */
  idle_timeout_ms: durationMs().default(65_000),
  /** Open connections each listener holds at most (admin included); more are closed on accept. */
  max_connections: positiveInt.max(1_000_000).default(1024),
  upstream_timeout_ms: durationMs().default(300_000),
  shutdown_grace_ms: durationMs(0).default(10_000),
});

const LogSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  format: z.enum(['json', 'text']).default('json'),
});

/** The shortest reload.poll_ms (see there). */
const MIN_POLL_MS = 500;

const ReloadSchema = z.strictObject({
  /** Watch template and policy paths; SIGHUP reloads either way. */
  watch: z.boolean().default(true),
  debounce_ms: durationMs(0).default(250),
  /**
   * With `watch`: how often every watched file's identity (inode, size, times) is compared with
   * the last check, a backstop for changes no file watch reports; 0 turns the check off.
   */
  poll_ms: durationMs(0)
    // Each check walks every watched directory: more often than this would keep a core busy on a
    // large tree (2,000 files: ~35 ms a check, ~160 ms as a ConfigMap's symlinks).
    .refine((ms) => ms === 0 || ms >= MIN_POLL_MS, `must be 0 (off) or at least ${MIN_POLL_MS} ms`)
    .default(2000),
  /** Deadline for one reload (and the first load): past it the reload is rejected, the last good set keeps serving. */
  timeout_ms: durationMs().default(30_000),
});

export const ConfigSchema = z
  .strictObject({
    listen: ListenSchema.prefault({}),
    environment: EnvironmentSchema.prefault({}),
    identity: IdentitySchema.prefault({}),
    policy: PolicySchema.prefault({}),
    templates: TemplatesSchema.prefault({}),
    secrets: SecretsSchema.prefault({}),
    providers: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: 'provider names use letters, digits, _ . -' }), ProviderSchema)
      .default({ echo: { kind: 'echo' } }),
    /**
     * Model name → provider name. A name is held to the rule requests are (matched exactly, case
     * included): one the ingress would refuse could never be selected, a silent dead entry.
     */
    models: z.record(z.string().refine(isModelName, { error: MODEL_NAME_RULE }), nonEmpty).default({ echo: 'echo' }),
    redaction: RedactionSchema.prefault({}),
    audit: AuditSchema.prefault({}),
    limits: LimitsSchema.prefault({}),
    log: LogSchema.prefault({}),
    reload: ReloadSchema.prefault({}),
  })
  .superRefine(
    (value, ctx) => {
      const { models, providers } = value;
      for (const [model, provider] of Object.entries(models)) {
        if (typeof provider !== 'string' || Object.hasOwn(providers, provider)) continue;
        const known = Object.keys(providers).map(shownName).join(', ') || 'none';
        ctx.addIssue({
          code: 'custom',
          message: `unknown provider ${shownName(provider)} (configured providers: ${known})`,
          input: provider,
          path: ['models', model],
        });
      }
    },
    {
      // Run even when other keys are wrong, so one pass reports every problem; it needs only
      // `models` and `providers` to be mappings.
      when: (payload) => {
        const v = payload.value as { models?: unknown; providers?: unknown } | undefined;
        const isMap = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
        return isMap(v) && isMap(v?.models) && isMap(v?.providers);
      },
    },
  );

export type Config = z.output<typeof ConfigSchema>;
/** The file's shape before defaults (what a user may write). */
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ProviderConfig = Config['providers'][string];
export type OpenAIProviderConfig = Extract<ProviderConfig, { kind: 'openai' }>;
export type EchoProviderConfig = Extract<ProviderConfig, { kind: 'echo' }>;
export type AuditSinkConfig = Config['audit']['sinks'][number];
export type IdentityConfig = Config['identity'];
export type PolicyConfig = Config['policy'];
export type LimitsConfig = Config['limits'];
export type LogConfig = Config['log'];
export type RedactionConfigInput = Config['redaction'];
