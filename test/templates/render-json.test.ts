/**
 * The render stage's JSON literals (ctx.contentJson) stand in for JSON.stringify of the rendered
 * contents when the outbound prompt is serialised: a literal that differs would send (and HMAC)
 * a different prompt than the one rendered. They are compared with the real thing here.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../scripts/lib/prng.js';
import { canonicalJson, outboundJson, outboundText } from '../../src/pipeline/canonical-json.js';
import type { RequestContext } from '../../src/pipeline/stage.js';
import type { ChatMessage, Template } from '../../src/pipeline/types.js';
import { renderTemplate } from '../../src/templates/renderer.js';
import type { RenderedText } from '../../src/templates/provenance.js';
import { makeTemplate } from '../stage-context.js';

const PIECES = ['plain text', '"quoted"', 'back\\slash', 'tab\tnl\nret\r', 'ctl\u0001\u001f', 'é ü', '😀', '\ud83d', '\ude00', '\u2028', '</script>', '{{x}}', ''];

function template(contents: string[]): Template {
  return makeTemplate({
    id: 't/json',
    variables: { a: { source: 'request', type: 'string', required: false, pii: false }, b: { source: 'request', type: 'string', required: false, pii: false } },
    messages: contents.map((content, i) => ({ role: i === 0 ? 'system' : 'user', content })),
  });
}

function context(messages: ChatMessage[], outbound: ChatMessage[], contentJson: Array<string | undefined>): RequestContext {
  return { request: {} as RequestContext['request'], trace: { traceId: 't', spanId: 's' }, timings: {}, messages, outbound, contentJson };
}

describe('rendered JSON literals', () => {
  it('equal JSON.stringify of every rendered content, for 3,000 generated templates and values', () => {
    const rnd = mulberry32(21);
    let compared = 0;
    const pick = () => PIECES[Math.floor(rnd() * PIECES.length)]!;
    // Template text never holds a literal `{{x}}` (that would be a placeholder); values may.
    const fixed = () => pick().replace('{{x}}', '{x}');
    for (let n = 0; n < 3000; n++) {
      const text = () => `${fixed()}${fixed()}`;
      const value = () => `${pick()}${pick()}`;
      const contents = [`${text()}{{a}}${text()}`, rnd() < 0.5 ? text() : `{{a}}${fixed()}{{b}}`];
      const json: Array<string | undefined> = [];
      const out = renderTemplate(template(contents), { a: value(), b: value() }, json);
      expect(json).toHaveLength(out.length);
      for (const [i, m] of out.entries()) {
        const literal = json[i];
        // A surrogate pair split between template text and a value gets no literal at all.
        if (literal !== undefined) {
          expect(literal).toBe(JSON.stringify(m.content));
          compared++;
        }
      }
    }
    // Only the rare split pairs go without a literal.
    expect(compared).toBeGreaterThan(5500);
  });

  it('leaves out a content whose surrogate pair is split between the template and a value', () => {
    const json: Array<string | undefined> = [];
    const [m] = renderTemplate(template(['x \ud83d{{a}}']), { a: '\ude00 y' }, json);
    expect(m!.content).toBe('x 😀 y');
    expect(json).toEqual([undefined]);
  });

  it('make outboundJson write exactly the canonical JSON, whether redaction changed a message or not', () => {
    const json: Array<string | undefined> = [];
    const messages = renderTemplate(template(['Fixed "policy"\n\ttext {{a}}', '{{b}} \u2028 done']), { a: 'val\\ue', b: 'mail jane@example.com' }, json);
    // Redaction left the first message alone and rewrote the second.
    const outbound: ChatMessage[] = [messages[0]!, { role: 'user', content: 'mail <EMAIL_ADDRESS_1> \u2028 done' }];
    expect(outboundJson(context(messages, outbound, json))).toBe(canonicalJson(outbound));
    // Any other message shape takes the generic walk, with the same result.
    const named: ChatMessage[] = [{ ...messages[0]!, name: 'n' } as ChatMessage, outbound[1]!];
    expect(outboundJson(context(messages, named, json))).toBe(canonicalJson(named));
  });

  it('names the first message as a prefix of the outbound JSON only when it is the rendered text, with its role', () => {
    const long = `Policy: ${'be factual and kind. '.repeat(40)}code {{a}}`;
    const tpl = template([long, '{{b}}']);
    const render = (a: string, t: Template = tpl) => {
      const json: Array<string | undefined> = [];
      const provenance: RenderedText[] = [];
      const messages = renderTemplate(t, { a, b: 'user text' }, json, provenance);
      return { messages, json, provenance };
    };
    const withProvenance = (r: ReturnType<typeof render>, outbound: ChatMessage[]) => ({
      ...context(r.messages, outbound, r.json),
      renderProvenance: r.provenance,
    });
    const r1 = render('ESC-1');
    const t1 = outboundText(withProvenance(r1, r1.messages.slice()))!;
    expect(t1.json).toBe(canonicalJson(r1.messages));
    // The prefix is exactly the first message's canonical JSON, as the array's opening.
    expect(t1.prefix).toBeDefined();
    expect(t1.json.slice(0, t1.prefix!.length)).toBe(canonicalJson([r1.messages[0]]).slice(0, -1));
    // The same values in the same compiled template name the same prefix; another value, another
    // compile (a reload) or another role name another one.
    const again = render('ESC-1');
    expect(outboundText(withProvenance(again, again.messages.slice()))!.prefix).toEqual(t1.prefix);
    const otherValue = render('ESC-2');
    expect(outboundText(withProvenance(otherValue, otherValue.messages.slice()))!.prefix!.key).not.toBe(t1.prefix!.key);
    const reloaded = render('ESC-1', template([long, '{{b}}']));
    expect(outboundText(withProvenance(reloaded, reloaded.messages.slice()))!.prefix!.key).not.toBe(t1.prefix!.key);
    const asUser: ChatMessage[] = [{ role: 'user', content: r1.messages[0]!.content }, r1.messages[1]!];
    const roleChanged = outboundText(withProvenance(r1, asUser))!;
    expect(roleChanged.json).toBe(canonicalJson(asUser));
    expect(roleChanged.prefix!.key).not.toBe(t1.prefix!.key);
    // Redaction rewrote the first message: no name, the text is still canonical.
    const redacted: ChatMessage[] = [{ role: 'system', content: 'Policy: <REDACTED>' + 'x'.repeat(600) }, r1.messages[1]!];
    const t2 = outboundText(withProvenance(r1, redacted))!;
    expect(t2.json).toBe(canonicalJson(redacted));
    expect(t2.prefix).toBeUndefined();
    // A short first message is not named; nor is anything without render provenance.
    expect(outboundText(context(r1.messages, r1.messages.slice(), r1.json))!.prefix).toBeUndefined();
    const tiny: Array<string | undefined> = [];
    const tinyProv: RenderedText[] = [];
    const tinyMessages = renderTemplate(template(['short {{a}}', '{{b}}']), { a: 'v', b: 'w' }, tiny, tinyProv);
    expect(outboundText({ ...context(tinyMessages, tinyMessages.slice(), tiny), renderProvenance: tinyProv })!.prefix).toBeUndefined();
  });
});
