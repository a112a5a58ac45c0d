/**
 * Property: for any text and any way of cutting it into stream pieces, the streamed output
 * equals the non-streamed output. Texts are built from the generated corpus (every entity, its
 * obfuscations and look-alikes) with a seeded PRNG, so a failure is reproducible.
 */
import { describe, expect, it } from 'vitest';
import type { CompletionChunk } from '../../src/pipeline/types.js';
import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { generateRedactCorpus } from '../../scripts/gen-redact-corpus.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { collect, decision, fromArray, joinChunks } from './helpers.js';

const chunk = (content: string): CompletionChunk => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: null }] });

describe('streamed output equals non-streamed output for random texts and cuts', () => {
  const corpus = generateRedactCorpus({ perEntity: 12, perLookalike: 10 });
  const redactor = createRedactor({});
  const joiners = [' ', '\n', ' and ', ', ', '\n\n', ' — '];
  const wrappers: Array<[string, string]> = [['', ''], ['', ''], ['', ''], ['"', '"'], ["'", "'"], ['[', ']'], ['*', '*'], ['`', '`'], ['{"v":"', '"}']];

  it('300 random texts, some quoted or bracketed, random piece sizes', async () => {
    const rnd = mulberry32(424242);
    const failures: string[] = [];
    for (let iter = 0; iter < 300; iter++) {
      const parts: string[] = [];
      const count = 2 + Math.floor(rnd() * 5);
      for (let k = 0; k < count; k++) {
        // Half of them quoted, bracketed or as a JSON value, as models write them.
        const [open, close] = wrappers[Math.floor(rnd() * wrappers.length)]!;
        parts.push(`${open}${corpus[Math.floor(rnd() * corpus.length)]!.text}${close}`);
      }
      let text = '';
      for (const p of parts) text += (text ? joiners[Math.floor(rnd() * joiners.length)] : '') + p;
      const s = redactor.session(decision({ entities: [...BUILTIN_ENTITIES] }), []);
      const expected = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: text } }] }).choices[0]!.message.content as string;
      const pieces: CompletionChunk[] = [];
      for (let i = 0; i < text.length; ) {
        const size = 1 + Math.floor(rnd() * 12);
        pieces.push(chunk(text.slice(i, i + size)));
        i += size;
      }
      const got = joinChunks(await collect(s.processStream(fromArray(pieces)))).content;
      if (got !== expected) failures.push(JSON.stringify({ iter, text, expected, got }));
    }
    expect(failures.slice(0, 3)).toEqual([]);
  });
});
