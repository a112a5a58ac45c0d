/**
 * Development authenticator: every *local* caller (loopback TCP or the Unix socket) is one fixed
 * principal from config. It exists so the embedded default runs without a cluster; it refuses
 * remote peers and says loudly, once, that it is on.
 */
import { WardenError } from '../pipeline/errors.js';
import type { Authenticator } from '../pipeline/ports.js';
import type { Credentials, Principal } from '../pipeline/types.js';
import { frozenPrincipal } from './frozen.js';

/** The one logger method this module needs (pino's signature), so it does not depend on telemetry. */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface DevAuthenticatorOptions {
  principal: { namespace: string; service_account: string; pod?: string };
  logger?: WarnLogger;
}

export class DevAuthenticator implements Authenticator {
  readonly method = 'dev';
  private readonly principal: Principal;

  constructor(opts: DevAuthenticatorOptions) {
    const { namespace, service_account, pod } = opts.principal;
    if (!namespace || !service_account) throw new Error('dev: principal.namespace and principal.service_account are required');
    this.principal = frozenPrincipal({
      kind: 'dev',
      subject: `system:serviceaccount:${namespace}:${service_account}`,
      namespace,
      service_account,
      ...(pod ? { pod } : {}),
      audiences: [],
    });
    opts.logger?.warn(
      { auth_method: 'dev', principal: this.principal.subject },
      'DEV AUTHENTICATION ENABLED: every local caller is treated as this principal; never use it in production',
    );
  }

  authenticate(credentials: Credentials): Principal | null {
    // A bearer token (the OpenAI client always sends one) is ignored: dev mode trusts the peer, not tokens.
    const peer = credentials.peer;
    if (!peer.local) {
      throw new WardenError('unauthenticated', 'dev authentication is accepted only from loopback or Unix-socket peers', {
        details: { method: 'dev' },
      });
    }
    // A local reverse proxy (nginx, an ingress sidecar) relays other hosts' requests from a local
    // peer; the header it adds says so, and dev must not make those callers the dev principal.
    // A web page in a browser on this host (server/headers.ts BROWSER_HEADER): its site, not the workload, made the request.
    if (peer.relayHeader === 'origin') {
      throw new WardenError('unauthenticated', 'dev authentication is not accepted for a request a web page made (it carries origin): the caller is a browser, not the local workload', {
        details: { method: 'dev' },
      });
    }
    if (peer.relayHeader !== undefined) {
      throw new WardenError(
        'unauthenticated',
        `dev authentication is not accepted for a request relayed by a proxy (it carries ${peer.relayHeader}): the caller is not the local peer`,
        { details: { method: 'dev' } },
      );
    }
    return this.principal;
  }
}
