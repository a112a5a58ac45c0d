import { BUILTIN_ENTITIES, createRedactor } from '../../src/redact/index.js';
import { collect, decision, fromArray, joinChunks } from './helpers.js';
import { mulberry32 } from '../../scripts/lib/prng.js';
const chunk = (content: string) => ({ id: 'c', model: 'm', created: 1, choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const redactor = createRedactor({});
const rnd = mulberry32(7);
const shape = process.argv[2] ?? 'spaced2';
const make = shape === 'spaced2' ? () => Array.from({ length: 400 }, () => String(Math.floor(rnd() * 90) + 10)).join(' ') : () => 'The quick brown fox jumps over the lazy dog. '.repeat(25);
let ms = 0, kb = 0;
for (let round = 0; round < Number(process.argv[3] ?? 6); round++) {
  const text = make();
  const pieces = [];
  for (let i = 0; i < text.length; ) { const n = 2 + Math.floor(rnd() * 3); pieces.push(chunk(text.slice(i, i + n))); i += n; }
  const s2 = redactor.session(decision({ entities: [...BUILTIN_ENTITIES] }), []);
  const c0 = process.cpuUsage();
  await collect(s2.processStream(fromArray(pieces as any)));
  const c = process.cpuUsage(c0);
  if (round > 0) { ms += (c.user + c.system) / 1000; kb += text.length / 1024; }
}
console.log(shape, (ms / kb).toFixed(2), 'ms/KB');
