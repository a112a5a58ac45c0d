/**
 * The members of the objects a request is made of (chat messages, tool calls, tools, Anthropic
 * content blocks). A member Warden does not carry to the model must not be dropped silently: that
 * changes the call without a word (a dropped `is_error` turns a failed tool into a successful
 * one, a dropped `refusal` rewrites the history). So each object is held to the members Warden
 * carries, plus documented ones it may let go of because of what they hold: the empty values an
 * SDK leaves on an answer an app appends to its history (`audio: null`), or a hint whose loss
 * does not change the answer (Anthropic's `cache_control`). Anything else is refused at its
 * location. A member name is the caller's text: repeated only when identifier-shaped, else the
 * object holding it is named.
 */
import { WardenError } from '../pipeline/errors.js';
import { MEMBER_NAME, UNNAMED_MEMBER } from '../pipeline/identifiers.js';

/** A member Warden lets go of when its value passes `accepts`; `expected` says what passes. */
export interface Droppable {
  accepts(v: unknown): boolean;
  expected: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const NULL_ONLY: Droppable = { accepts: (v) => v === null, expected: 'null' };
export const EMPTY_LIST: Droppable = { accepts: (v) => Array.isArray(v) && v.length === 0, expected: 'an empty list' };
export const NULL_OR_EMPTY_LIST: Droppable = { accepts: (v) => v === null || (Array.isArray(v) && v.length === 0), expected: 'null or an empty list' };
export const FALSE_ONLY: Droppable = { accepts: (v) => v === false, expected: 'false' };
/** A hint to the provider whatever it says (only its shape is checked): nothing of it goes on. */
export const ANY_OBJECT: Droppable = { accepts: (v) => v === null || isObject(v), expected: 'null or an object' };

export interface MemberRule {
  /** What the object is, for errors: "a chat message". */
  what: string;
  /** The members Warden carries (their values are checked where they are read). */
  carried: readonly string[];
  /** The members Warden lets go of, and the values it lets go. */
  dropped?: Readonly<Record<string, Droppable>>;
}

function invalid(message: string, path: string): WardenError {
  return new WardenError('invalid_request', message, { location: { path } });
}

/**
 * Refuses a member of `obj` that `rule` neither carries nor drops, or a dropped one holding a
 * value that would be lost, with `invalid_request` at `<path>.<member>` (at `path` when the
 * name is not identifier-shaped). Values are never quoted back.
 */
export function checkMembers(obj: Record<string, unknown>, rule: MemberRule, path: string): void {
  for (const key of Object.keys(obj)) {
    if (rule.carried.includes(key)) continue;
    const drop = rule.dropped !== undefined && Object.hasOwn(rule.dropped, key) ? rule.dropped[key] : undefined;
    if (drop !== undefined) {
      if (drop.accepts(obj[key])) continue;
      throw invalid(`field '${path}.${key}' must be ${drop.expected}: Warden does not carry it to the model, and dropping it would change the request`, `${path}.${key}`);
    }
    if (MEMBER_NAME.test(key)) throw invalid(`field '${path}.${key}' is not a member of ${rule.what} that Warden accepts (${accepted(rule)})`, `${path}.${key}`);
    throw invalid(`field '${path}' has ${UNNAMED_MEMBER}, which is not a member of ${rule.what}`, path);
  }
}

function accepted(rule: MemberRule): string {
  return [...rule.carried, ...Object.keys(rule.dropped ?? {})].join(', ');
}

/** Calls `check` on each object in `list` with its path; anything else is left to the caller's own checks. */
export function eachObject(list: unknown, path: string, check: (obj: Record<string, unknown>, path: string) => void): void {
  if (!Array.isArray(list)) return;
  list.forEach((item, i) => {
    if (isObject(item)) check(item, `${path}.${i}`);
  });
}
