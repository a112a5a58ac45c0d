/**
 * Stage 1, authenticate: the configured methods in order; the first that claims the credentials
 * decides. Credentials that were sent but cannot be read are refused before any method looks: read
 * as "none", they would fall through to `dev`, which accepts every local caller without a token.
 */
import { WardenError } from '../pipeline/errors.js';
import type { Authenticator } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { Credentials, Principal } from '../pipeline/types.js';

export function createAuthenticateStage(authenticators: readonly Authenticator[]): Stage {
  const methods = authenticators.map((a) => a.method).join(', ') || 'none';
  // What each method takes, so a token none took says why (an `iss` that is not quite the
  // configured issuer, a trailing `/`, is the usual mistake): fixed text, never the token's.
  const takes = authenticators.map((a) => (a.takes ? `${a.method} takes ${a.takes}` : a.method)).join('; ') || 'none';

  function refused(credentials: Credentials): WardenError {
    return new WardenError(
      'unauthenticated',
      credentials.bearer ? `bearer token not accepted by any configured method (${takes})` : `no credentials for any configured method (${methods})`,
      { details: { methods: authenticators.map((a) => a.method) } },
    );
  }

  /** From method `from` on, once one of them answered with a promise. */
  async function rest(ctx: RequestContext, pending: Promise<Principal | null>, from: number): Promise<void> {
    const credentials = ctx.request.credentials;
    let answer: Principal | null = await pending;
    for (let i = from; ; i++) {
      if (answer) {
        ctx.principal = answer;
        return;
      }
      if (i + 1 >= authenticators.length) throw refused(credentials);
      answer = await authenticators[i + 1]!.authenticate(credentials);
    }
  }

  return {
    name: 'authenticate',
    // Not async: a method that answers at once (dev, a token verified before) costs no promise.
    run(ctx: RequestContext): void | Promise<void> {
      const credentials = ctx.request.credentials;
      if (credentials.malformed !== undefined) throw new WardenError('unauthenticated', credentials.malformed);
      for (let i = 0; i < authenticators.length; i++) {
        const answer = authenticators[i]!.authenticate(credentials);
        if (isPromise(answer)) return rest(ctx, answer, i);
        if (answer) {
          ctx.principal = answer;
          return;
        }
      }
      throw refused(credentials);
    },
  };
}

function isPromise(v: Principal | null | Promise<Principal | null>): v is Promise<Principal | null> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}
