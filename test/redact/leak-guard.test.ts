/**
 * The answer-side leak guard against what a caller can still read back: secrets hidden by
 * invisible characters, fullwidth forms or JSON escapes. Every case compares the streamed output
 * with the non-streamed one and checks that no emitted piece holds a part of the canary.
 */
import { describe, expect, it } from 'vitest';
import { isWardenError, type WardenError } from '../../src/pipeline/errors.js';
import type { CompletionChunk } from '../../src/pipeline/types.js';
import { createRedactor } from '../../src/redact/index.js';
import type { Session } from '../../src/redact/session.js';
import { collect, decision, fromArray } from './helpers.js';

const CANARY = 'CANARY-SECRET-7f3a';

const redactor = createRedactor({});

function contentChunk(content: string): CompletionChunk {
  return { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: null }] };
}
function argsChunk(args: string): CompletionChunk {
  return { id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args } }] }, finish_reason: null }] };
}

/** The non-streamed answer: `text` as content, or as one tool call's arguments. */
function whole(s: Session, text: string, asArgs: boolean): string {
  const message = asArgs
    ? { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: text } }] }
    : { role: 'assistant' as const, content: text };
  const out = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message }] }).choices[0]!.message;
  return asArgs ? out.tool_calls![0]!.function.arguments : (out.content as string);
}

/** Streams `pieces` and returns every emitted delta of the channel, in order. */
async function streamed(s: Session, pieces: string[], asArgs: boolean): Promise<string[]> {
  const chunks = pieces.map((p) => (asArgs ? argsChunk(p) : contentChunk(p)));
  chunks.push({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
  const deltas: string[] = [];
  for (const c of await collect(s.processStream(fromArray(chunks)))) {
    const d = c.choices[0]?.delta;
    if (!d) continue;
    if (asArgs) for (const t of d.tool_calls ?? []) deltas.push(t.function?.arguments ?? '');
    else if (typeof d.content === 'string') deltas.push(d.content);
  }
  return deltas;
}

function bySize(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** Every way to cut `text` in two, and every piece size 1..maxSize. */
function cuts(text: string, maxSize: number): Array<{ how: string; pieces: string[] }> {
  const out: Array<{ how: string; pieces: string[] }> = [];
  for (let i = 1; i < text.length; i++) out.push({ how: `split at ${i}`, pieces: [text.slice(0, i), text.slice(i)] });
  for (let size = 1; size <= maxSize; size++) out.push({ how: `pieces of ${size}`, pieces: bySize(text, size) });
  return out;
}

function thrown(f: () => unknown): WardenError {
  try {
    f();
  } catch (err) {
    if (isWardenError(err)) return err;
    throw err;
  }
  throw new Error('expected a WardenError');
}

describe('leak guard: obfuscated and escaped secrets', () => {
  const FORMS: Record<string, string> = {
    'a zero-width space inside': 'CANARY\u200b-SECRET-7f3a',
    'a soft hyphen inside': 'CANARY-SEC\u00adRET-7f3a',
    'fullwidth forms': 'ＣＡＮＡＲＹ－ＳＥＣＲＥＴ－７ｆ３ａ',
    'a joiner between every letter': [...CANARY].join('\u200d'),
  };
  for (const [name, form] of Object.entries(FORMS)) {
    it(`masks the secret with ${name}, whole and streamed at every split`, async () => {
      const text = `code ${form} ok`;
      const s = redactor.session(decision(), [CANARY]);
      expect(whole(s, text, false)).toBe('code [SECRET_VALUE] ok');
      expect(s.report().leaks).toBe(1);
      for (const { how, pieces } of cuts(text, 9)) {
        const deltas = await streamed(redactor.session(decision(), [CANARY]), pieces, false);
        expect(deltas.join(''), how).toBe('code [SECRET_VALUE] ok');
      }
    });

    it(`refuses a prompt holding the secret with ${name}`, () => {
      const e = thrown(() => redactor.session(decision(), [CANARY]).redactMessages([{ role: 'user', content: `data: ${form} end` }]));
      expect(e.code).toBe('redaction_blocked');
      expect(e.details?.['reason']).toBe('secret_leak');
      expect(e.message + JSON.stringify(e.details)).not.toMatch(/CANARY|ＣＡＮＡＲＹ/);
    });
  }

  const ESCAPED: Record<string, [string, string]> = {
    'a \\u escape': ['{"x":"\\u0043ANARY-SECRET-7f3a"}', '{"x":"[SECRET_VALUE]"}'],
    'every character \\u-escaped': [`{"x":"${[...CANARY].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"}`, '{"x":"[SECRET_VALUE]"}'],
  };
  for (const [name, [args, expected]] of Object.entries(ESCAPED)) {
    it(`tool-call arguments with ${name} decode to the secret: masked whole and streamed`, async () => {
      const secrets = [CANARY];
      const s = redactor.session(decision(), secrets);
      const out = whole(s, args, true);
      expect(out).toBe(expected);
      expect(JSON.parse(out)).toBeTypeOf('object');
      for (const { how, pieces } of cuts(args, 9)) {
        const deltas = await streamed(redactor.session(decision(), secrets), pieces, true);
        expect(deltas.join(''), how).toBe(expected);
      }
    });
  }

  it('an escaped backslash before "u0043…" is not an escape: the text is not the secret and stays', () => {
    const args = '{"x":"\\\\u0043ANARY-SECRET-7f3a"}';
    expect(whole(redactor.session(decision(), [CANARY]), args, true)).toBe(args);
  });

  it('content (not JSON) with a literal "\\u0043ANARY…" is text, not an escape, and stays', () => {
    const text = 'write \\u0043ANARY-SECRET-7f3a in C';
    expect(whole(redactor.session(decision(), [CANARY]), text, false)).toBe(text);
  });

  it('prompt tool-call arguments with a \\u-escaped secret are refused', () => {
    const e = thrown(() =>
      redactor.session(decision(), [CANARY]).redactMessages([
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":"\\u0043ANARY-SECRET-7f3a"}' } }] },
      ]),
    );
    expect(e.details?.['reason']).toBe('secret_leak');
  });
});
