/**
 * Custom entities from configuration: a pattern run on RE2 (linear time, so no configuration can
 * make redaction hang), an optional checksum validator, context words, and dictionaries of
 * literal values (compiled into one RE2 alternation).
 */
import RE2 from 're2';
import { WardenError } from '../pipeline/errors.js';
import type { CustomEntityConfig, Detector, EntityInfo, Finding, ValidatorName } from './types.js';
import { digitsOf, luhnValid, mod11Valid, mod97, verhoeffValid } from './entities/util.js';

const NAME = /^[A-Z][A-Z0-9_]{1,63}$/;

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

export function runValidator(name: ValidatorName | undefined, value: string): boolean {
  switch (name) {
    case undefined:
    case 'none':
      return true;
    case 'luhn':
      return luhnValid(digitsOf(value));
    case 'verhoeff':
      return verhoeffValid(digitsOf(value));
    case 'mod11':
      return mod11Valid(value.replace(/[\s-]/g, ''));
    case 'mod97': {
      const compact = value.replace(/[\s-]/g, '');
      // IBAN-style: move the first four characters to the end when they start with letters.
      const rearranged = /^[A-Za-z]{2}\d{2}/.test(compact) ? compact.slice(4) + compact.slice(0, 4) : compact;
      return mod97(rearranged) === 1;
    }
    default:
      return false;
  }
}

/**
 * RE2's error kinds (re2/regexp.cc). Its message is `kind: the pattern or the part at fault`;
 * only a kind from this list is repeated, never what follows it: a pattern may spell out the
 * identifiers it is meant to find.
 */
const RE2_ERROR_KINDS = new Set([
  'invalid escape sequence',
  'invalid character class',
  'invalid character class range',
  'missing ]',
  'missing )',
  'unexpected )',
  'trailing \\',
  'no argument for repetition operator',
  'invalid repetition size',
  'bad repetition operator',
  'invalid perl operator',
  'invalid UTF-8',
  'invalid named capture group',
  'pattern too large - compile failed',
  'pattern too large - reverse compile failed',
]);

function re2Flags(flags: string): string {
  return `g${flags.replace(/[^imsu]/g, '')}`;
}

/** What is wrong with a pattern RE2 refuses, as `is not a valid RE2 pattern (KIND)`: no part of the pattern. */
function re2ErrorReason(err: unknown): string {
  const kind = String((err as Error)?.message ?? '').split(': ')[0] ?? '';
  return `is not a valid RE2 pattern${RE2_ERROR_KINDS.has(kind) ? ` (${kind})` : ''}`;
}

/** Why RE2 refuses `pattern`, or undefined when it compiles (the config loader's check). */
export function re2PatternProblem(pattern: string, flags = ''): string | undefined {
  try {
    new RE2(pattern, re2Flags(flags));
    return undefined;
  } catch (err) {
    return re2ErrorReason(err);
  }
}

/**
 * An allow pattern as the allow-list runs it: anchored, so it must match a whole finding. The
 * config loader checks the pattern alone as well, so that one which only compiles by closing the
 * anchor's group early (`a)|(b`) is refused rather than run unanchored.
 */
export function anchoredAllowPattern(pattern: string): string {
  return `^(?:${pattern})$`;
}

/** Compiles a user pattern on RE2; bad patterns are a config error with the key path. */
export function compileUserPattern(pattern: string, flags: string, path: string): RE2 {
  try {
    return new RE2(pattern, re2Flags(flags));
  } catch (err) {
    throw new WardenError('invalid_request', `${path} ${re2ErrorReason(err)}`, { location: { path } });
  }
}

export function compileCustomEntity(cfg: CustomEntityConfig, index: number): { detector: Detector; info: EntityInfo } {
  const path = `redaction.custom_entities[${index}]`;
  if (!NAME.test(cfg.name)) {
    throw new WardenError('invalid_request', `${path}.name must be UPPER_SNAKE_CASE`, { location: { path: `${path}.name` } });
  }
  if (!cfg.pattern && !(cfg.dictionary && cfg.dictionary.length > 0)) {
    throw new WardenError('invalid_request', `${path} needs a pattern or a dictionary`, { location: { path } });
  }
  const validators: readonly string[] = ['luhn', 'mod97', 'mod11', 'verhoeff', 'none'];
  if (cfg.validator !== undefined && !validators.includes(cfg.validator)) {
    throw new WardenError('invalid_request', `${path}.validator must be one of ${validators.join(', ')}`, {
      location: { path: `${path}.validator` },
    });
  }
  const pattern = cfg.pattern ? compileUserPattern(cfg.pattern, cfg.flags ?? '', `${path}.pattern`) : null;
  const words = (cfg.dictionary ?? []).map((w) => w.trim()).filter((w) => w.length > 0);
  const dictionary = words.length
    ? new RE2(`(?:^|[^\\pL\\pN_])(${words.map(escapeLiteral).join('|')})(?:$|[^\\pL\\pN_])`, 'gi')
    : null;
  const base = cfg.score ?? (cfg.validator && cfg.validator !== 'none' ? 0.85 : 0.6);
  const entity = cfg.name;
  const detector: Detector = {
    name: `custom:${entity}`,
    entities: [entity],
    detect(text, _ctx, out: Finding[]) {
      if (pattern) {
        pattern.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = pattern.exec(text)) !== null) {
          const v = m[0];
          if (v.length === 0) {
            pattern.lastIndex++;
            continue;
          }
          if (runValidator(cfg.validator, v)) out.push({ entity, start: m.index, end: m.index + v.length, score: base });
        }
      }
      if (dictionary) {
        dictionary.lastIndex = 0;
        let m: RegExpExecArray | null;
        while ((m = dictionary.exec(text)) !== null) {
          const v = m[1]!;
          const start = m.index + m[0].indexOf(v);
          out.push({ entity, start, end: start + v.length, score: Math.max(base, 0.85) });
          // The trailing boundary character may start the next word: step back onto it.
          dictionary.lastIndex = start + v.length;
        }
      }
    },
  };
  return { detector, info: { context: (cfg.context ?? []).map((w) => w.toLowerCase()), contextBoost: 0.35 } };
}
