/**
 * Stage 4, fetch: resolves exactly the secret refs the request needs (the template's
 * `source: secret` variables), and only those the policy decision granted. Anything not
 * granted ends the request closed before any secret is read.
 */
import { WardenError } from '../pipeline/errors.js';
import type { SecretResolver } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { MIN_SECRET_LENGTH, type Template } from '../pipeline/types.js';

const EMPTY: ReadonlyMap<string, string> = new Map();

/** Per template object (immutable once loaded; a reload brings new objects): its secret refs. */
const refsOf = new WeakMap<Template, readonly string[]>();

/** Secret refs a template's variables reference, in declaration order, without duplicates. */
export function templateSecretRefs(template: Template): readonly string[] {
  let refs = refsOf.get(template);
  if (refs === undefined) {
    const list: string[] = [];
    for (const spec of Object.values(template.variables)) {
      if (spec.source === 'secret' && spec.ref && !list.includes(spec.ref)) list.push(spec.ref);
    }
    refs = Object.freeze(list);
    refsOf.set(template, refs);
  }
  return refs;
}

/**
 * Whether the leak guard recognises a value in an answer (redact/leak-guard.ts `guardable`, handed
 * in by the composition root: a stage does not import another). It ignores values under
 * MIN_SECRET_LENGTH, which would match ordinary text, counting visible characters only:
 * zero-width, soft hyphen, BOM and other invisible ones are dropped by its fold, so `Zq7\u200bVw`
 * is 5 characters to it.
 */
export type Guardable = (value: string) => boolean;

/**
 * A value the guard cannot recognise would go into the prompt and come back in the answer
 * unmasked: refused, closed, as an empty secret file is. A loop over the request's few values.
 */
function checkGuardable(refs: readonly string[], values: ReadonlyMap<string, string>, guardable: Guardable): void {
  for (const ref of refs) {
    const v = values.get(ref);
    if (v !== undefined && (v.length < MIN_SECRET_LENGTH || !guardable(v))) {
      const invisible = v.length >= MIN_SECRET_LENGTH ? ' visible' : '';
      throw new WardenError(
        'secret_unavailable',
        `secret ${ref} is unavailable: shorter than ${MIN_SECRET_LENGTH}${invisible} characters, too short for the leak guard to recognise in an answer`,
        { details: { ref } },
      );
    }
  }
}

export function createFetchStage(getResolver: () => SecretResolver, guardable: Guardable): Stage {
  return {
    name: 'fetch',
    run(ctx: RequestContext): void | Promise<void> {
      const needed = ctx.template ? templateSecretRefs(ctx.template) : [];
      if (needed.length === 0) {
        ctx.secrets = new Map(EMPTY);
        return;
      }
      const decision = ctx.decision;
      if (!decision || !decision.allow) {
        throw new WardenError('policy_denied', 'no policy decision grants secrets for this request', {
          details: { reasons: ['no decision'] },
        });
      }
      for (const ref of needed) {
        if (!decision.secrets.includes(ref)) {
          const reason = `secret not granted: ${ref}`;
          throw new WardenError('policy_denied', reason, { details: { reasons: [reason] } });
        }
      }
      // Usually every value is cached: no promise, and the pipeline moves on without a hop.
      const resolver = getResolver();
      const cached = resolver.peek?.(needed);
      if (cached) {
        checkGuardable(needed, cached, guardable);
        ctx.secrets = cached;
        // Names of these very values, for render provenance (no stamps: the values get hashed).
        const stamps = resolver.stamps?.(needed);
        if (stamps) ctx.secretStamps = stamps;
        return;
      }
      return resolver.resolve(needed, ctx.request.signal).then((values) => {
        checkGuardable(needed, values, guardable);
        ctx.secrets = values;
      });
    },
  };
}
