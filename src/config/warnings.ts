/**
 * Things a valid config may do that an operator should know about: they are allowed (a pod
 * network may need them) but never silent.
 */
import { formatListen, isLoopbackHost } from './listen.js';
import type { Config } from './schema.js';

/**
 * Query parameters that carry a credential: Gemini's `key`, Azure Functions' `code`, Azure API
 * Management's `subscription-key`, a SAS `sig`, the generic names. Warden keeps a base_url's
 * query (Azure's `api-version`) and sends it as it is, and never prints the URL; but a key written
 * there is a literal secret in the config file (in its ConfigMap, its repository, every copy of
 * it), which `api_key` refuses to be.
 */
const CREDENTIAL_PARAM = /^(?:key|api[-_]?key|subscription[-_]?key|access[-_]?key|(?:access|auth|id|refresh)?[-_]?token|auth|code|sig|signature|secret|client[-_]?secret|pass(?:word|wd)?)$/i;

export function configWarnings(config: Config): string[] {
  const out: string[] = [];
  for (const name of ['http', 'grpc', 'admin'] as const) {
    const addr = config.listen[name];
    if (!isLoopbackHost(addr.host)) {
      out.push(`listen.${name} ${formatListen(addr)} is not a loopback address: other hosts can reach this listener`);
    }
  }
  const methods = config.identity.methods;
  if (methods.length === 0) out.push('identity.methods is empty: every request will be rejected as unauthenticated');
  if (methods.includes('dev')) {
    const p = config.identity.dev.principal;
    out.push(
      `identity method "dev" is enabled: loopback and Unix-socket callers act as ${p.namespace}/${p.service_account} without a token; never use it in production`,
    );
  }
  out.push(...plainHttpKeySets(config));
  const vault = config.secrets.vault;
  if (vault !== undefined && new URL(vault.address).protocol === 'http:' && !isLoopbackHost(new URL(vault.address).hostname.replace(/^\[|\]$/g, ''))) {
    out.push('secrets.vault.address uses plain http to a non-loopback host (allow_http): the Vault token and every secret read travel unencrypted');
  }
  if (config.policy.paths.length === 0) out.push('policy.paths is empty: every request will be denied');
  if (!config.audit.required) out.push('audit.required is false: requests proceed when the audit record cannot be written');
  for (const [name, provider] of Object.entries(config.providers)) {
    if (provider.kind !== 'openai') continue;
    const url = new URL(provider.base_url);
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) {
      out.push(`providers.${name}.base_url uses plain http to a non-loopback host: the API key and prompts travel unencrypted`);
    }
    for (const param of new Set(url.searchParams.keys())) {
      if (!CREDENTIAL_PARAM.test(param) || url.searchParams.get(param) === '') continue;
      // The name matched a fixed list, so it is safe to repeat; the value never is.
      out.push(
        `providers.${name}.base_url carries a credential in its query (${param}=…): a literal secret in the config file; put the key in providers.${name}.api_key as a secret ref (sent as Authorization: Bearer) if the upstream accepts it so`,
      );
    }
    // Harmless, but it reads as a bound that is doing something.
    const connections = provider.pool.connections;
    if (connections !== undefined && connections > config.limits.max_in_flight) {
      out.push(`providers.${name}.pool.connections (${connections}) is above limits.max_in_flight (${config.limits.max_in_flight}): it is never reached`);
    }
  }
  for (const [name, profile] of Object.entries(config.redaction.profiles ?? {})) {
    // Valid (a policy may want a profile that sends prompts as they are), but it turns off the
    // secret detectors too, which no one should do by accident.
    if (profile.entities.length === 0) {
      out.push(`redaction.profiles.${name}.entities is empty: prompts and answers under this profile are not redacted, secrets included`);
    }
  }
  return out;
}

/**
 * A key set fetched over plain http from another host: whoever is on the path (a pod on the same
 * node, a compromised router) can answer with keys of their own and then sign a token for any
 * service account, and reads the bearer token sent to fetch it (a pod's own service-account
 * token). Allowed (a mesh sidecar may encrypt the hop), never silent.
 */
function plainHttpKeySets(config: Config): string[] {
  const id = config.identity;
  const sources: Array<[string, { jwks_url?: string | undefined; jwks_bearer_token_file?: string | undefined }]> = [];
  if (id.methods.includes('kubernetes') && id.kubernetes) sources.push(['identity.kubernetes', id.kubernetes]);
  if (id.methods.includes('spiffe') && id.spiffe) {
    sources.push(['identity.spiffe', id.spiffe]);
    for (const [domain, bundle] of Object.entries(id.spiffe.bundles ?? {})) sources.push([`identity.spiffe.bundles[${JSON.stringify(domain)}]`, bundle]);
  }
  const out: string[] = [];
  for (const [where, source] of sources) {
    if (source.jwks_url === undefined) continue;
    const url = new URL(source.jwks_url);
    if (url.protocol !== 'http:' || isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))) continue;
    out.push(
      `${where}.jwks_url uses plain http to a non-loopback host: whoever is on the path can serve keys of their own and sign tokens for any identity` +
        (source.jwks_bearer_token_file === undefined ? '' : ', and the jwks_bearer_token_file token travels unencrypted'),
    );
  }
  return out;
}
