/**
 * The shapes of the names a caller uses to select things: template ids, variable names, models. The
 * template loader holds templates to them, and the ingress holds requests to them, so a name
 * that could never select anything is refused at the door without being repeated: names are the
 * caller's data, and only a name of these shapes is ever echoed in an error, handed to the
 * policy or written to the audit log.
 */

/** `team/name`: path-like, lower case, no `@` (that separates the version in a reference). */
export const TEMPLATE_ID = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;
export const MAX_TEMPLATE_ID_LENGTH = 200;

/**
 * The highest template version: nine digits, what `id@version` names over HTTP and the CLI, and
 * well within gRPC's `uint32`. The loader refuses a higher one, which no request could pin.
 */
export const MAX_TEMPLATE_VERSION = 999_999_999;
/** The version in `id@version`: a positive integer of at most nine digits, no leading zero. */
export const TEMPLATE_VERSION = /^[1-9][0-9]{0,8}$/;

/** A template variable's name: an identifier of letters, digits and `_`, at most 128 long. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * A member name that an error may repeat: a parameter-like identifier of letters, digits and `_`,
 * at most 64 long. Any other member name a caller sends (an unknown key in a content part or in
 * the `warden` object) is refused without being quoted: it could be anything, PII included.
 */
export const MEMBER_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** What an error says of a member whose name it does not repeat. */
export const UNNAMED_MEMBER = 'a member whose name is not a parameter name (letters, digits and _, at most 64 characters)';

/** The longest model name a request may carry. */
export const MAX_MODEL_LENGTH = 256;

/**
 * Characters no model name has: C0/C1 controls and DEL (a line break or an escape sequence
 * rewrites a log or terminal line), invisible format characters (bidi overrides, zero-width), and
 * the line and paragraph separators. Other characters are left to providers' own naming.
 */
const NOT_IN_MODEL_NAME = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * The refusal for a model name of the wrong shape; it does not repeat the name. (A well-shaped
 * name that is not configured is only ever named back once it matches a configured model.)
 */
export const MODEL_NAME_RULE = `must be 1 to ${MAX_MODEL_LENGTH} characters, without control or invisible format characters`;

export function isModelName(model: string): boolean {
  return model.length > 0 && model.length <= MAX_MODEL_LENGTH && !NOT_IN_MODEL_NAME.test(model);
}

/** A character as an escape (`\u200b`, `\u{1d173}`): an invisible one is shown, never written raw. */
function escapeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

const INVISIBLE = new RegExp(NOT_IN_MODEL_NAME.source, 'gu');

/**
 * `text` with every control, invisible format, line or paragraph separator character written as
 * an escape, for a message that names text an operator wrote (a config key): what would hide or
 * rewrite a terminal line is shown instead.
 */
export function escapeInvisible(text: string): string {
  return text.replace(INVISIBLE, escapeChar);
}

/**
 * Why a model name written by an operator (a template's `models:` entry) breaks the rule, or
 * undefined: the rule, and what in the name breaks it: the first character that may not be in it,
 * escaped, and its position, or the name's length. An invisible character cannot be found in the
 * file otherwise. Not for a caller's name: that is refused without a word about it.
 */
export function modelNameProblem(model: string): string | undefined {
  if (isModelName(model)) return undefined;
  if (model.length === 0 || model.length > MAX_MODEL_LENGTH) return `${MODEL_NAME_RULE} (this one has ${model.length})`;
  const at = NOT_IN_MODEL_NAME.exec(model)!;
  // Counted in characters (code points), as an editor's column is.
  const position = [...model.slice(0, at.index)].length + 1;
  return `${MODEL_NAME_RULE} (${escapeChar(at[0])} at character ${position})`;
}

export function isTemplateId(id: string): boolean {
  return id.length <= MAX_TEMPLATE_ID_LENGTH && TEMPLATE_ID.test(id);
}
