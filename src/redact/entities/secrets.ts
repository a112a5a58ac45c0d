/**
 * Secrets: cloud and SaaS credentials with a recognisable shape, private key blocks, JWTs, and
 * `password=` / `api_key:`-style assignments whose value has enough entropy to be real.
 *
 * One combined, prefix-anchored regex finds every shaped token in a single pass (its branches
 * start with distinct literals and use only bounded or single character-class quantifiers, so it
 * is linear); the capture group that matched names the entity.
 */
import type { TextTraits } from '../prefilter.js';
import type { Detector, Finding } from '../types.js';
import { shannonEntropy } from './util.js';

export const SECRET_ENTITIES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'GITHUB_TOKEN',
  'GITLAB_TOKEN',
  'SLACK_TOKEN',
  'STRIPE_SECRET_KEY',
  'OPENAI_API_KEY',
  'ANTHROPIC_API_KEY',
  'GOOGLE_API_KEY',
  'NPM_TOKEN',
  'PRIVATE_KEY',
  'JWT',
  'PASSWORD',
  'URL_CREDENTIALS',
] as const;

const SHAPES: Array<[string, string]> = [
  ['AWS_ACCESS_KEY_ID', '(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z2-7]{16}'],
  ['GITHUB_TOKEN', '(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{50,255})'],
  ['GITLAB_TOKEN', '(?:glpat|gldt|glrt|glptt|glft|glsoat)-[A-Za-z0-9_-]{20,64}'],
  ['SLACK_TOKEN', '(?:xox[abposr]-[A-Za-z0-9-]{10,250}|hooks\\.slack\\.com/services/T[A-Za-z0-9_]{8,12}/B[A-Za-z0-9_]{8,12}/[A-Za-z0-9_]{20,32})'],
  ['STRIPE_SECRET_KEY', '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}'],
  ['ANTHROPIC_API_KEY', 'sk-ant-(?:api|admin|oat)\\d{2}-[A-Za-z0-9_-]{20,255}'],
  ['OPENAI_API_KEY', 'sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,255}'],
  ['GOOGLE_API_KEY', 'AIza[0-9A-Za-z_-]{35}'],
  ['NPM_TOKEN', 'npm_[A-Za-z0-9]{36}'],
  ['JWT', 'eyJ[A-Za-z0-9_-]{8,4096}\\.eyJ[A-Za-z0-9_-]{8,8192}\\.[A-Za-z0-9_-]{16,1024}'],
];

/** Sticky: tried only where a hint below matched (the hint is the token's first characters). */
const SHAPED = new RegExp(`(?<![A-Za-z0-9_/+-])(?:${SHAPES.map(([, p]) => `(${p})`).join('|')})(?![A-Za-z0-9_-])`, 'y');

/** Prefilter: one pass finds where a shaped secret could start. */
const SHAPE_HINTS = /A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|SCA|Iza)|gh[pousr]_|github_pat_|gl(?:pat|dt|rt|ptt|ft|soat)-|xox[abposr]-|hooks\.slack|[sr]k_(?:live|test)_|sk-|npm_|eyJ/g;

const KEY_NAMES = 'pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|bearer[_-]?token|token|private[_-]?key|credentials?|aws[_-]?secret[_-]?access[_-]?key';
// key, optional closing quote, ':' or '=' (or ':='), optional opening quote, then the value.
const ASSIGNMENT = new RegExp(`(?<![A-Za-z0-9])(?:[A-Za-z0-9]{1,20}[_-])?(${KEY_NAMES})["']?[ \\t]{0,3}(?::=|=>|[:=])[ \\t]{0,3}["']?([^\\s"'\`,;<>\\\\{}()\\[\\]]{6,256})`, 'iy');
/** Prefilter for assignments: a key token ending right before ':' or '=' (quotes, spaces allowed). */
const KEY_SUFFIX = /(?:pass|passwd|password|passphrase|pwd|secret|key|token|credentials?)$/i;
const AWS_HINT = /aws|secret/gi;
const NOT_A_VALUE = /^(?:null|none|nil|true|false|undefined|redacted|changeme|example|placeholder|your[_-].*|x{4,}|\*+|\$\{.*|%[A-Z_]+%?|process\.env.*|env\.[A-Za-z_].*|os\.environ.*)$/i;

const AWS_SECRET = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;
/** How far after "aws"/"secret" a key is looked for (the scanner's context window). */
const CONTEXT_REACH = 48;

function isKeyCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45;
}

// The prefilter's conditions of each part of the detector (see prefilter.ts).
/** Every shaped token is a run of 15 or more [A-Za-z0-9_+/-] (the shortest: "xoxb-" and 10 more;
 * a Slack webhook's path and a JWT's last segment are such runs too). */
const mayShape = (t: TextTraits): boolean => t.longestRun >= 15;
/** A key block starts with "-----BEGIN ". */
const mayKeyBlock = (t: TextTraits): boolean => t.dashes >= 5;
/** An assignment is a key name, then a ':' or '=' operator (':=' and '=>' included). */
const mayAssign = (t: TextTraits): boolean => t.keyAssignments > 0;
/** An AWS secret access key is 40 of [A-Za-z0-9/+]. */
const mayAwsSecret = (t: TextTraits): boolean => t.longestRun >= 40;

export interface SecretDetectorOptions {
  /** Minimum Shannon entropy (bits/char) of an assignment's value. Default 3.0. */
  minEntropy?: number;
}

function privateKeyBlocks(text: string, out: Finding[]): void {
  let i = text.indexOf('-----BEGIN ');
  while (i >= 0) {
    const headerEnd = text.indexOf('-----', i + 11);
    if (headerEnd < 0 || headerEnd - i > 64) {
      i = text.indexOf('-----BEGIN ', i + 11);
      continue;
    }
    const label = text.slice(i + 11, headerEnd);
    if (!/PRIVATE KEY/.test(label)) {
      i = text.indexOf('-----BEGIN ', headerEnd);
      continue;
    }
    const endMarker = text.indexOf('-----END ', headerEnd + 5);
    let end: number;
    if (endMarker >= 0) {
      const close = text.indexOf('-----', endMarker + 9);
      end = close >= 0 ? close + 5 : text.length;
    } else {
      // Truncated block: redact the header and the base64 body that follows.
      end = headerEnd + 5;
      while (end < text.length && /[A-Za-z0-9+/=\s:,-]/.test(text[end]!)) end++;
    }
    out.push({ entity: 'PRIVATE_KEY', start: i, end, score: 1 });
    i = text.indexOf('-----BEGIN ', end);
  }
}

export function createSecretsDetector(opts: SecretDetectorOptions = {}): Detector {
  const minEntropy = opts.minEntropy ?? 3.0;
  return {
    name: 'secrets',
    entities: SECRET_ENTITIES.filter((e) => e !== 'URL_CREDENTIALS'),
    mayMatch: (t) => mayShape(t) || mayKeyBlock(t) || mayAssign(t) || mayAwsSecret(t),
    detect(text, ctx, out) {
      // The regex passes run only where their prefilter condition holds (always, without traits);
      // the other parts start from an indexOf that finds nothing when theirs fails.
      const t = ctx.traits;
      let m: RegExpExecArray | null = null;
      let h: RegExpExecArray | null;
      if (!t || mayShape(t)) {
        let lastEnd = 0;
        SHAPE_HINTS.lastIndex = 0;
        while ((h = SHAPE_HINTS.exec(text)) !== null) {
          if (h.index < lastEnd) continue;
          SHAPED.lastIndex = h.index;
          m = SHAPED.exec(text);
          if (!m) continue;
          for (let g = 1; g <= SHAPES.length; g++) {
            if (m[g] !== undefined) {
              out.push({ entity: SHAPES[g - 1]![0], start: m.index, end: m.index + m[0].length, score: 0.95 });
              break;
            }
          }
          lastEnd = m.index + m[0].length;
          SHAPE_HINTS.lastIndex = lastEnd;
        }
      }
      if (text.indexOf('-----BEGIN ') >= 0) privateKeyBlocks(text, out);
      let lastEnd2 = 0;
      // '=' and ':' operators in text order (two indexOf cursors merged).
      let eq = text.indexOf('=');
      let colon = text.indexOf(':');
      {
        while (eq >= 0 || colon >= 0) {
          const i = colon < 0 || (eq >= 0 && eq < colon) ? eq : colon;
          if (i === eq) eq = text.indexOf('=', eq + 1);
          else colon = text.indexOf(':', colon + 1);
          // Walk back over spaces and a closing quote to the end of the key token.
          let e = i;
          while (e > 0 && i - e < 4 && (text.charCodeAt(e - 1) === 32 || text.charCodeAt(e - 1) === 9)) e--;
          if (e > 0 && (text.charCodeAt(e - 1) === 34 || text.charCodeAt(e - 1) === 39)) e--;
          let s = e;
          while (s > 0 && e - s < 48 && isKeyCode(text.charCodeAt(s - 1))) s--;
          if (s < e && s >= lastEnd2 && KEY_SUFFIX.test(text.slice(s, e))) {
            // Try the token start, then each '_'/'-' inside it ("my_db_password" → "db_password").
            m = null;
            for (let k = s; k < e && !m; k++) {
              if (k > s) {
                const c = text.charCodeAt(k - 1);
                if (c !== 95 && c !== 45) continue;
              }
              ASSIGNMENT.lastIndex = k;
              m = ASSIGNMENT.exec(text);
            }
            if (m) {
              const value = m[2]!;
              lastEnd2 = m.index + m[0].length;
              const plausible =
                !NOT_A_VALUE.test(value) &&
                // Values that are themselves placeholders from a previous redaction are not secrets.
                !/^[[<][A-Z_]+(?:[_:][0-9a-f]+)?[\]>]$/.test(value);
              if (plausible) {
                const start = m.index + m[0].length - value.length;
                const entity = m[1]!.toLowerCase().startsWith('aws') ? 'AWS_SECRET_ACCESS_KEY' : 'PASSWORD';
                // Low entropy is a word's ("password: required"), unless the value holds PII
                // ("Zq9kW:4111111111111111", the repeated digits lower it): then it is a holder,
                // which the scanner keeps only around another finding (see Finding.holder).
                const finding: Finding = { entity, start, end: start + value.length, score: 0.8 };
                if (shannonEntropy(value) < minEntropy) finding.holder = true;
                out.push(finding);
              }
              m = null;
            }
          }
        }
      }
      // AWS secret access keys are 40 base64 characters with no prefix: only looked for shortly
      // after "aws"/"secret" (the scanner adds the context boost); mixed case and a digit or
      // symbol rule out hex digests.
      if (ctx.wants('AWS_SECRET_ACCESS_KEY') && (!t || mayAwsSecret(t))) {
        AWS_HINT.lastIndex = 0;
        let scannedTo = 0;
        while ((h = AWS_HINT.exec(text)) !== null) {
          const from = Math.max(h.index, scannedTo);
          const to = Math.min(text.length, h.index + CONTEXT_REACH + 40);
          if (from >= to) continue;
          // A bounded window (plus one character each side for the boundary checks).
          const ws = Math.max(0, from - 1);
          const we = Math.min(text.length, to + 41);
          const sub = text.slice(ws, we);
          AWS_SECRET.lastIndex = 0;
          while ((m = AWS_SECRET.exec(sub)) !== null) {
            const v = m[0];
            const at = ws + m.index;
            if (at >= to) break;
            if (ws + m.index + 40 >= we && we < text.length) break; // may continue past the window
            if (!/[a-z]/.test(v) || !/[A-Z]/.test(v) || !/[0-9/+]/.test(v)) continue;
            if (shannonEntropy(v) < 4) continue;
            out.push({ entity: 'AWS_SECRET_ACCESS_KEY', start: at, end: at + 40, score: 0.3 });
          }
          scannedTo = to;
        }
      }
    },
  };
}
