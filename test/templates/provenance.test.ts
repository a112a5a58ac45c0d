/**
 * Render provenance keys (src/templates/provenance.ts) name exactly what produced a rendered text:
 * one key never stands for two texts, different values never share a key (however their text
 * looks: separators, digits, placeholders, unicode, lone surrogates), a reload of the same
 * template file makes new keys, and no value appears in a key.
 */
import { describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { Template } from '../../src/pipeline/types.js';
import { encodeValues, RenderedText, valuesDigest } from '../../src/templates/provenance.js';
import { createRenderStage, parseTemplateFiles, renderTemplate, TemplateRegistry } from '../../src/templates/index.js';
import { makeContext, makeTemplate } from '../stage-context.js';

const CANARY = 'CANARY-SECRET-9f8e7d';

function tpl(messages: Template['messages'], over: Partial<Template> = {}): Template {
  return makeTemplate({
    id: 'team/prov',
    variables: {
      a: { source: 'request', type: 'string', required: false, pii: true },
      b: { source: 'request', type: 'string', required: false, pii: true },
    },
    messages,
    ...over,
  });
}

/** Values chosen to collide under a naive encoding (joined, comma-separated, UTF-8, ...). */
const TRICKY = [
  '',
  'a',
  'ab',
  'b',
  ':',
  '1:',
  '1:a',
  '0:',
  'a:b',
  ',',
  '\u0000',
  '{{a}}',
  '{{b}}',
  '}}{{',
  'x{{a}}y',
  'é',
  'e\u0301', // the same letter, decomposed
  '😀',
  '\ud83d', // lone high surrogate
  '\ude00', // lone low surrogate
  '\ud800',
  '\udfff',
  '\ufffd', // what UTF-8 makes of a lone surrogate
  '日本語',
  CANARY,
  `${CANARY}\n`,
];

function keysOf(template: Template, values: Record<string, string>): { texts: string[]; keys: string[] } {
  const prov: RenderedText[] = [];
  const out = renderTemplate(template, values, undefined, prov);
  expect(prov).toHaveLength(out.length);
  prov.forEach((p, i) => expect(p.text).toBe(out[i]!.content));
  return { texts: out.map((m) => m.content as string), keys: prov.map((p) => p.key()) };
}

describe('render provenance keys', () => {
  it('name one text each, and never let two value lists share a key', () => {
    // Two placeholders side by side: 'a'+'b' and 'ab'+'' render the same text from different values.
    const t = tpl([
      { role: 'system', content: 'fixed {{a}}{{b}} end' },
      { role: 'user', content: '{{b}}|{{a}}|{{a}}' },
      { role: 'assistant', content: 'no placeholders' },
    ]);
    const textOfKey = new Map<string, string>();
    const valuesOfKey = new Map<string, string>();
    let pairs = 0;
    for (const a of TRICKY) {
      for (const b of TRICKY) {
        const { texts, keys } = keysOf(t, { a, b });
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i]!;
          const seen = textOfKey.get(k);
          if (seen !== undefined) expect(texts[i]).toBe(seen); // one key, one text
          textOfKey.set(k, texts[i]!);
          if (i < 2) {
            const vals = JSON.stringify([i, a, b]);
            const other = valuesOfKey.get(k);
            if (other !== undefined) expect(other).toBe(vals); // one key, one value list
            valuesOfKey.set(k, vals);
          }
        }
        pairs++;
      }
    }
    expect(pairs).toBe(TRICKY.length ** 2);
    // Every (message, values) pair got its own key; the fixed message one key for all.
    expect(valuesOfKey.size).toBe(2 * TRICKY.length ** 2);
    expect(textOfKey.size).toBe(2 * TRICKY.length ** 2 + 1);
    // Same text, different values: different keys (exact, not merely text-equal).
    expect(keysOf(t, { a: 'a', b: 'b' }).texts[0]).toBe(keysOf(t, { a: 'ab', b: '' }).texts[0]);
    expect(keysOf(t, { a: 'a', b: 'b' }).keys[0]).not.toBe(keysOf(t, { a: 'ab', b: '' }).keys[0]);
  });

  it('keeps lone surrogates apart (UTF-8 would fold them all into U+FFFD)', () => {
    const lone = ['\ud800', '\udbff', '\udc00', '\udfff', '\ufffd', '\ud83d', '\ude00'];
    const digests = new Set(lone.map((v) => valuesDigest([v])));
    expect(digests.size).toBe(lone.length);
    const pair = valuesDigest(['\ud83d\ude00']);
    expect(digests.has(pair)).toBe(false);
    expect(valuesDigest(['\ud83d', '\ude00'])).not.toBe(pair);
  });

  it('encodes value lists unambiguously', () => {
    const lists = [[], [''], ['', ''], ['a'], ['a', ''], ['', 'a'], ['1:a'], ['1', 'a'], ['1:a', ''], ['a:b'], ['3:a:b']];
    const encoded = lists.map(encodeValues);
    // Distinct lists of the same length encode apart (the count is fixed by the template).
    for (let i = 0; i < lists.length; i++) {
      for (let j = 0; j < lists.length; j++) {
        if (i !== j && lists[i]!.length === lists[j]!.length) expect(encoded[i]).not.toBe(encoded[j]);
      }
    }
    expect(valuesDigest([])).toBe('');
    expect(valuesDigest([''])).not.toBe('');
  });

  it('is stable for one compiled template and changes when the template is reloaded', () => {
    const file = {
      file: 'templates/prov.yaml',
      text: `id: team/prov
version: 1
owner: o@example.com
sensitivity: internal
description: d
approvals: [{ by: o@example.com, ticket: T-1 }]
retire_after: 2099-12-31
allowed_services: ["dev/*"]
variables:
  who: { type: string }
messages:
  - role: system
    content: "Hello {{who}}, this is the long fixed part."
  - role: user
    content: "fixed"
`,
    };
    const load = (): Template => {
      const loaded = parseTemplateFiles([file]);
      expect(loaded.issues).toEqual([]);
      return new TemplateRegistry(loaded.templates, loaded.revision).get('team/prov', 1)!;
    };
    const first = load();
    const k1 = keysOf(first, { who: 'Ada' });
    expect(keysOf(first, { who: 'Ada' }).keys).toEqual(k1.keys); // every request of one load: cache hits
    const reloaded = load();
    expect(reloaded).not.toBe(first);
    const k2 = keysOf(reloaded, { who: 'Ada' });
    expect(k2.texts).toEqual(k1.texts);
    expect(k2.keys[0]).not.toBe(k1.keys[0]);
    expect(k2.keys[1]).not.toBe(k1.keys[1]); // fixed messages too
  });

  it('holds no value text', () => {
    const t = tpl([{ role: 'system', content: 'Key {{a}} and {{b}}.' }]);
    const values = { a: CANARY, b: 'ada.lovelace@example.com' };
    const { keys, texts } = keysOf(t, values);
    expect(texts[0]).toContain(CANARY);
    for (const v of Object.values(values)) {
      expect(keys[0]).not.toContain(v);
      expect(keys[0]).not.toContain(Buffer.from(v).toString('base64'));
      expect(keys[0]).not.toContain(Buffer.from(v).toString('hex'));
    }
    // Short values too: the digest is salted, so a key does not reveal an 8-character secret by
    // hashing guesses (the unsalted SHA-256 of the encoded value is not in it).
    expect(keys[0]).not.toContain(valuesDigest(['ESC-7731']));
    expect(keysOf(t, { a: 'ESC-7731', b: '' }).keys[0]).not.toContain('ESC-7731');
  });
});

describe('render stage provenance', () => {
  const stage = createRenderStage();
  const template = tpl([
    { role: 'system', content: 'System {{a}}' },
    { role: 'user', content: '{{b}}' },
  ]);

  it('records what produced each rendered message', async () => {
    const ctx: RequestContext = makeContext({ template: { id: template.id, version: 1 }, variables: { a: CANARY, b: 'hi' } }, { template });
    await stage.run(ctx);
    const prov = ctx.renderProvenance!;
    expect(prov).toHaveLength(2);
    expect(prov.map((p) => p!.text)).toEqual(ctx.messages!.map((m) => m.content));
    expect(prov[0]!.key()).not.toBe(prov[1]!.key());
    expect(JSON.stringify(prov.map((p) => p!.key()))).not.toContain(CANARY);
  });

  it('names a message of fixed text, config and stamped secrets by the stamps, and any other by its values', async () => {
    const t = tpl(
      [
        { role: 'system', content: 'Policy for {{team}}. Code: {{code}}' },
        { role: 'user', content: '{{a}} / {{code}}' },
      ],
      {
        variables: {
          a: { source: 'request', type: 'string', required: false, pii: true },
          team: { source: 'config', type: 'string', required: true, pii: false, value: 'billing' },
          code: { source: 'secret', type: 'string', required: true, pii: false, ref: 'env://CODE' },
        },
      },
    );
    const run = async (value: string, stamp: string | undefined, a = 'hi') => {
      const ctx: RequestContext = makeContext(
        { template: { id: t.id, version: 1 }, variables: { a } },
        { template: t, secrets: new Map([['env://CODE', value]]), ...(stamp ? { secretStamps: new Map([['env://CODE', stamp]]) } : {}) },
      );
      await stage.run(ctx);
      return ctx.renderProvenance!.map((p) => p!.key());
    };
    const [sys1, user1] = await run(CANARY, 'inst.1');
    // The system message holds no request value: named by stamps, no hash, no value in the key.
    expect(sys1).toMatch(/:s:config,inst\.1$/);
    expect(sys1).not.toContain(CANARY);
    // The same stamp names the same text; a new stamp (the secret fetched again) a new name, even
    // for the same value; without a stamp, the values are hashed.
    expect((await run(CANARY, 'inst.1'))[0]).toBe(sys1);
    expect((await run(CANARY, 'inst.2'))[0]).not.toBe(sys1);
    const hashed = (await run(CANARY, undefined))[0]!;
    expect(hashed).not.toContain(':s:');
    expect(hashed).not.toBe(sys1);
    // A message with a request value is named by a digest of its values, stamps or not.
    expect(user1).not.toContain(':s:');
    expect((await run(CANARY, 'inst.1', 'other'))[1]).not.toBe(user1);
  });

  it('records nothing for raw messages', async () => {
    const ctx = makeContext({ messages: [{ role: 'user', content: 'raw' }] });
    await stage.run(ctx);
    expect(ctx.messages).toEqual([{ role: 'user', content: 'raw' }]);
    expect(ctx.renderProvenance).toBeUndefined();
  });
});
