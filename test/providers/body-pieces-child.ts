/**
 * Run by body-pieces.test.ts in a child process with a small V8 heap: one non-streamed call to the
 * upstream at argv[2]; prints `ok <content length>` or `error <code>: <message>`.
 */
import { createOpenAIProvider } from '../../src/providers/index.js';

const provider = createOpenAIProvider({ name: 'pieces', baseUrl: process.argv[2]!, timeouts: { bodyMs: 60_000 } });
try {
  const result = await provider.complete({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: false, params: {}, signal: new AbortController().signal });
  const content = result.choices[0]?.message.content;
  process.stdout.write(`ok ${typeof content === 'string' ? content.length : -1}\n`);
} catch (err) {
  process.stdout.write(`error ${(err as { code?: string }).code}: ${(err as Error).message}\n`);
} finally {
  await provider.close();
}
