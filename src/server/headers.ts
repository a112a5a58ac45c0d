/**
 * The few request headers the HTTP ingress reads, found in `req.rawHeaders` in one pass. Reading
 * `req.headers` makes node build a dictionary of every header the client sent (an SDK sends a
 * dozen `x-stainless-*` ones) with a keyed store per header, on every request, for the five or six
 * Warden looks at.
 *
 * Values are what `req.headers` would give: for `authorization` and `content-length` the first
 * occurrence wins (node drops their duplicates), any other header's duplicates are joined with
 * ", " (node's rule for headers it has no special rule for). A credential header sent more than
 * once is also marked (`authorizationRepeated`, `apiKeyRepeated`): which of two tokens the caller
 * meant is not for Warden to guess, and the values alone would hide it.
 */
export interface IngressHeaders {
  authorization?: string;
  contentLength?: string;
  /** `content-encoding` (duplicates joined, as node does) */
  contentEncoding?: string;
  /** `transfer-encoding` (duplicates joined, as node does): node's parser decodes `chunked` only. */
  transferEncoding?: string;
  traceparent?: string;
  /** `x-warden-template` */
  template?: string;
  /** `x-warden-variables` */
  variables?: string;
  /** `x-api-key` (Anthropic SDKs send their key there) */
  apiKey?: string;
  /** `authorization` came more than once. */
  authorizationRepeated?: true;
  /** `x-api-key` came more than once. */
  apiKeyRepeated?: true;
  /**
   * The first proxy header (RELAY_HEADERS) sent, lower-cased; or `origin` (BROWSER_HEADER) when the
   * request carries one and no proxy header came before it.
   */
  relayHeader?: string;
}

/**
 * The header a browser adds to a request a web page makes: to every cross-origin request and to a
 * same-origin POST (so to a page that reaches a loopback port by DNS rebinding too). No SDK or
 * workload sends it. A page open on a developer's machine is not the local workload, though its
 * connection comes from loopback: `dev` refuses it as it refuses a relayed request (HTTP only:
 * a browser cannot speak gRPC to Warden).
 */
export const BROWSER_HEADER = 'origin';

/**
 * The headers a proxy adds to a request it relays (PeerInfo.relayHeader), in gRPC metadata too:
 * the forwarding headers nginx and HAProxy add when told to, and those Envoy adds by default
 * (`x-forwarded-proto`, `x-envoy-external-address`) or an HTTP proxy must add (`via`).
 */
export const RELAY_HEADERS: readonly string[] = ['x-forwarded-for', 'forwarded', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'via', 'x-envoy-external-address'];
const RELAY_NAMES: ReadonlySet<string> = new Set(RELAY_HEADERS);
/** The lengths of those names: only a header name of one of them is lower-cased to be looked up. */
const RELAY_LENGTHS: readonly boolean[] = RELAY_HEADERS.reduce<boolean[]>((at, h) => ((at[h.length] = true), at), []);

function joined(previous: string | undefined, value: string): string {
  return previous === undefined ? value : `${previous}, ${value}`;
}

export function ingressHeaders(raw: readonly string[]): IngressHeaders {
  const out: IngressHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    // Only names of the right length are lower-cased and compared.
    switch (name.length) {
      case 13:
        if (name.toLowerCase() !== 'authorization') break;
        if (out.authorization === undefined) out.authorization = raw[i + 1]!;
        else out.authorizationRepeated = true;
        break;
      case 14:
        if (out.contentLength === undefined && name.toLowerCase() === 'content-length') out.contentLength = raw[i + 1]!;
        break;
      case 16:
        if (name.toLowerCase() === 'content-encoding') out.contentEncoding = joined(out.contentEncoding, raw[i + 1]!);
        break;
      case 11:
        if (name.toLowerCase() === 'traceparent') out.traceparent = joined(out.traceparent, raw[i + 1]!);
        break;
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'x-warden-template') out.template = joined(out.template, raw[i + 1]!);
        else if (lower === 'transfer-encoding') out.transferEncoding = joined(out.transferEncoding, raw[i + 1]!);
        break;
      }
      case 18:
        if (name.toLowerCase() === 'x-warden-variables') out.variables = joined(out.variables, raw[i + 1]!);
        break;
      case 9:
        if (name.toLowerCase() !== 'x-api-key') break;
        if (out.apiKey !== undefined) out.apiKeyRepeated = true;
        out.apiKey = joined(out.apiKey, raw[i + 1]!);
        break;
    }
    if (out.relayHeader === undefined && RELAY_LENGTHS[name.length] === true) {
      const lower = name.toLowerCase();
      if (RELAY_NAMES.has(lower)) out.relayHeader = lower;
    }
    // `accept` has the length too: only a name starting with o/O is lower-cased.
    if (name.length === 6 && out.relayHeader === undefined && (name.charCodeAt(0) | 0x20) === 0x6f && name.toLowerCase() === BROWSER_HEADER) out.relayHeader = BROWSER_HEADER;
  }
  return out;
}
