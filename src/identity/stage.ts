/** Stage 1, authenticate: the configured methods in order; the first that claims the credentials decides. */
import { WardenError } from '../pipeline/errors.js';
import type { Authenticator } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';

export function createAuthenticateStage(authenticators: readonly Authenticator[]): Stage {
  const methods = authenticators.map((a) => a.method).join(', ') || 'none';
  return {
    name: 'authenticate',
    async run(ctx: RequestContext) {
      const credentials = ctx.request.credentials;
      for (const a of authenticators) {
        const principal = await a.authenticate(credentials);
        if (principal) {
          ctx.principal = principal;
          return;
        }
      }
      throw new WardenError(
        'unauthenticated',
        credentials.bearer ? `bearer token not accepted by any configured method (${methods})` : `no credentials for any configured method (${methods})`,
        { details: { methods: authenticators.map((a) => a.method) } },
      );
    },
  };
}
