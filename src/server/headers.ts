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
  /** The first proxy header (`x-forwarded-for`, `forwarded`, `x-real-ip`) sent, lower-cased. */
  relayHeader?: string;
}

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
      case 16: {
        const lower = name.toLowerCase();
        if (lower === 'content-encoding') out.contentEncoding = joined(out.contentEncoding, raw[i + 1]!);
        else if (lower === 'x-forwarded-host') out.relayHeader ??= lower;
        break;
      }
      case 11:
        if (name.toLowerCase() === 'traceparent') out.traceparent = joined(out.traceparent, raw[i + 1]!);
        break;
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'x-warden-template') out.template = joined(out.template, raw[i + 1]!);
        else if (lower === 'x-forwarded-proto') out.relayHeader ??= lower;
        break;
      }
      case 18:
        if (name.toLowerCase() === 'x-warden-variables') out.variables = joined(out.variables, raw[i + 1]!);
        break;
      case 9: {
        const lower = name.toLowerCase();
        if (lower === 'x-api-key') {
          if (out.apiKey !== undefined) out.apiKeyRepeated = true;
          out.apiKey = joined(out.apiKey, raw[i + 1]!);
        } else if (lower === 'forwarded' || lower === 'x-real-ip') out.relayHeader ??= lower;
        break;
      }
      case 15:
        if (out.relayHeader === undefined && name.toLowerCase() === 'x-forwarded-for') out.relayHeader = 'x-forwarded-for';
        break;
      case 3:
        if (out.relayHeader === undefined && name.toLowerCase() === 'via') out.relayHeader = 'via';
        break;
      case 24:
        if (out.relayHeader === undefined && name.toLowerCase() === 'x-envoy-external-address') out.relayHeader = 'x-envoy-external-address';
        break;
    }
  }
  return out;
}
