/**
 * zod's issues in Warden's words, for the config file and the template files alike: what is
 * expected and what kind of thing was found, never the value itself (a file's value may be a
 * pasted secret). Passed to safeParse as its `error` map; a schema's own message wins over it.
 */
import type { z } from 'zod';

/**
 * YAML's `.inf`, `-.inf` and `.nan`, and a number past a double's range (`1e400`, which YAML
 * reads as Infinity): numbers to `typeof`, yet not numbers to zod's check, so named for what
 * they are rather than as "a fractional number" after "must be a number".
 */
function nonFinite(input: number): string {
  if (Number.isNaN(input)) return '.nan (not a number)';
  return input > 0
    ? 'infinity (.inf, or a number too large to hold, such as 1e400)'
    : '-infinity (-.inf, or a number too large to hold, such as -1e400)';
}

function kindOf(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'number' && !Number.isFinite(input)) return nonFinite(input);
  if (typeof input === 'number' && !Number.isInteger(input)) return 'a fractional number';
  return `a ${typeof input}`;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  record: 'a mapping',
};

export function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      if ((issue.expected === 'number' || issue.expected === 'int') && typeof issue.input === 'number' && !Number.isFinite(issue.input)) return `must be a finite number, got ${kindOf(issue.input)}`;
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, got ${kindOf(issue.input)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options;
      if (options) return `must be one of ${options.map((v) => JSON.stringify(v)).join(', ')}`;
      return undefined;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return `must have at least ${min} item${min === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must have at most ${max} items`;
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' ? 'has an invalid format' : `must be a valid ${issue.format}`;
    case 'invalid_key': {
      // A mapping key that fails its own schema (e.g. a trust domain name): say what it must be.
      const inner = (issue as { issues?: Array<{ message?: string }> }).issues?.[0]?.message;
      return inner ? `is not a valid key: it ${inner}` : 'has an invalid key';
    }
    default:
      return undefined;
  }
}
