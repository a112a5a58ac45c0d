/**
 * The template file format (one YAML document per template version). The schema checks shape
 * and types; loader.ts adds the cross-field rules (placeholders, refs, secret literals) and
 * turns every problem into a `file:line:col` location.
 */
import { z } from 'zod';
import { MAX_TEMPLATE_ID_LENGTH, MAX_TEMPLATE_VERSION, TEMPLATE_ID, VARIABLE_NAME, modelNameProblem } from '../pipeline/identifiers.js';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;
const isoDate = z
  .string()
  .regex(ISO_DATE, 'expected an ISO-8601 date (2027-06-30) or date-time (2027-06-30T12:00:00Z)')
  .refine(isCalendarDate, 'not a valid calendar date');

/** Date.parse rolls 2027-02-30 over to March; a governance date must be a real day. */
function isCalendarDate(s: string): boolean {
  if (!ISO_DATE.test(s)) return true; // the regex check reports this one
  const [y, m, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number];
  const day = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  day.setUTCFullYear(y, m - 1, d);
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) return false;
  return s.length === 10 || !Number.isNaN(Date.parse(s));
}

export { TEMPLATE_ID } from '../pipeline/identifiers.js';

/** A string with something in it besides white space (an approval by " " approves nothing). */
const notBlank = z.string().min(1).regex(/\S/, 'must not be blank');

/**
 * One side of an `allowed_services` entry: a lower-case Kubernetes name with the glob syntax the
 * policy's `glob.match` understands: `*`, `?`, a class `[a-z]` / `[!abc]`, alternatives `{a,b}`.
 * Only this subset is accepted, so an entry that loads is one the policy can match: a broken
 * glob (`pay[`, `{x`, a trailing `\\`) or an upper-case name would silently match no caller.
 */
const SERVICE_PART = String.raw`(?:[a-z0-9._-]|\*|\?|\[!?(?:[a-z0-9._](?:-[a-z0-9._])?)+\]|\{[a-z0-9._*?-]*(?:,[a-z0-9._*?-]*)*\})+`;
const SERVICE_GLOB = new RegExp(`^${SERVICE_PART}/${SERVICE_PART}$`);
/** A range inside a class (`[a-z]`): the glob compiler refuses one that runs backwards (`[z-a]`). */
const CLASS_RANGE = /([a-z0-9._])-([a-z0-9._])/g;
const SERVICE_CLASS = /\[!?([^\]]*)\]/g;

function rangesInOrder(entry: string): boolean {
  for (const cls of entry.matchAll(SERVICE_CLASS)) {
    for (const r of cls[1]!.matchAll(CLASS_RANGE)) if (r[1]! > r[2]!) return false;
  }
  return true;
}

const RESERVED_NAMES: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

export const VariableSchema = z.strictObject({
  source: z.enum(['request', 'secret', 'config']).default('request'),
  type: z.enum(['string', 'number', 'boolean']).default('string'),
  required: z.boolean().default(true),
  pii: z.boolean().default(false),
  max_length: z.number().int().positive().optional(),
  ref: z.string().min(1).optional(),
  // Any number, .inf and .nan included: loader.ts checks how a number was written and says what
  // is wrong with it (z.number() would refuse those two with a bare "Invalid input").
  value: z.union([z.string(), z.custom<number>((v) => typeof v === 'number'), z.boolean()]).optional(),
  description: z.string().optional(),
});

export const TemplateSchema = z.strictObject({
  id: z
    .string()
    .max(MAX_TEMPLATE_ID_LENGTH)
    .regex(TEMPLATE_ID, 'expected a lower-case path such as "support/ticket-summary"'),
  version: z.number().int().min(1).max(MAX_TEMPLATE_VERSION, `must be at most ${MAX_TEMPLATE_VERSION} (the highest version a request can name)`),
  owner: notBlank,
  sensitivity: z.enum(['public', 'internal', 'restricted']),
  description: notBlank,
  approvals: z
    .array(z.strictObject({ by: notBlank, ticket: notBlank, at: isoDate.optional() }))
    .default([]),
  retire_after: isoDate.optional(),
  allowed_services: z
    .array(
      z
        .string()
        .regex(SERVICE_GLOB, 'expected "namespace/service_account": lower-case names, with the globs * ? [a-z] [!a] {a,b}')
        .refine(rangesInOrder, 'a class range runs backwards (write [a-z], not [z-a])'),
    )
    .default([]),
  // Held to the rule requests are held to: an entry no request could carry would only look like
  // it allows a model (`gpt-4o` with a zero-width space), and would reach the policy and the audit.
  models: z
    .array(
      notBlank.check((ctx) => {
        if (!/\S/.test(ctx.value)) return; // notBlank says so
        const problem = modelNameProblem(ctx.value);
        if (problem) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
      }),
    )
    .default([]),
  variables: z
    .record(
      z
        .string()
        .regex(VARIABLE_NAME, 'variable names are identifiers (letters, digits and _, at most 128 characters)')
        .refine((n) => !RESERVED_NAMES.has(n), 'this name is reserved (it is a property of every JavaScript object)'),
      VariableSchema,
    )
    .default({}),
  messages: z
    .array(z.strictObject({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']), content: z.string() }))
    .min(1),
});

export type TemplateDocument = z.infer<typeof TemplateSchema>;
