/**
 * The shapes of the names a caller uses to select things: template ids and variable names. The
 * template loader holds templates to them, and the ingress holds requests to them, so a name
 * that could never select anything is refused at the door without being repeated: names are the
 * caller's data, and only a name of these shapes is ever echoed in an error, handed to the
 * policy or written to the audit log.
 */

/** `team/name`: path-like, lower case, no `@` (that separates the version in a reference). */
export const TEMPLATE_ID = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;
export const MAX_TEMPLATE_ID_LENGTH = 200;

/** A template variable's name: an identifier of letters, digits and `_`, at most 128 long. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** The longest model name a request may carry (it is echoed in errors and audited). */
export const MAX_MODEL_LENGTH = 256;

export function isTemplateId(id: string): boolean {
  return id.length <= MAX_TEMPLATE_ID_LENGTH && TEMPLATE_ID.test(id);
}
