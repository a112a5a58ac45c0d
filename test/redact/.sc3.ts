import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { collect, decision, fromArray, joinChunks } from './helpers.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
const chunk = (content: string) => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const redactor = createRedactor({});
const rnd = mulberry32(11);
const digits = (s: string) => (s.match(/\d/g) ?? []).length;
const gens = [
  () => Array.from({ length: 60 }, () => String(Math.floor(rnd() * 90) + 10)).join(' '),
  () => Array.from({ length: 40 }, () => String(Math.floor(rnd() * 900) + 100)).join(' '),
  () => Array.from({ length: 30 }, () => String(Math.floor(rnd() * 9000) + 1000)).join(' '),
  () => Array.from({ length: 40 }, () => String(Math.floor(rnd() * 10 ** (1 + Math.floor(rnd() * 4))))).join(' '),
  () => 'Call ' + Array.from({ length: 8 }, () => `(${Math.floor(rnd()*800)+200}) 555 ${Math.floor(rnd()*9000)+1000}`).join(' or '),
];
let wholeClear = 0, streamClear = 0, diff = 0, n = 0, ms = 0, kb = 0, worse = 0;
for (let it = 0; it < 200; it++) {
  const text = gens[it % gens.length]!();
  const s = redactor.session(decision({ entities: [...BUILTIN_ENTITIES] }), []);
  const whole = s.processCompletion({ id: 'x', model: 'm', created: 1, choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: text } }] } as any).choices[0]!.message.content as string;
  const pieces = [];
  for (let i = 0; i < text.length; ) { const k = 2 + Math.floor(rnd() * 3); pieces.push(chunk(text.slice(i, i + k))); i += k; }
  const s2 = redactor.session(decision({ entities: [...BUILTIN_ENTITIES] }), []);
  const c0 = process.cpuUsage();
  const got = joinChunks(await collect(s2.processStream(fromArray(pieces as any)))).content as string;
  const c = process.cpuUsage(c0); if (it >= 20) { ms += (c.user + c.system) / 1000; kb += text.length / 1024; }
  n++; wholeClear += digits(whole); streamClear += digits(got); if (got !== whole) diff++; if (digits(got) > digits(whole)) worse++;
}
console.log({ n, diff, worse, wholeClear, streamClear, msPerKB: (ms / kb).toFixed(1) });
