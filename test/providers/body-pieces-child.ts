/**
 * Run by body-pieces.test.ts in a child process with a small V8 heap: `calls` calls at once to the
 * upstream at argv[2] (argv[3]: `complete` or `stream`, argv[4]: calls, default 1); prints the
 * content length each got (`ok N`), or the first failure (`error <code>: <message>`).
 */
import type { CompletionChunk } from '../../src/pipeline/index.js';
import { createOpenAIProvider } from '../../src/providers/index.js';

const [, , baseUrl, kind = 'complete', calls = '1'] = process.argv;
const provider = createOpenAIProvider({ name: 'pieces', baseUrl: baseUrl!, timeouts: { bodyMs: 60_000 } });
const request = (stream: boolean) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], stream, params: {}, signal: new AbortController().signal });

async function one(): Promise<number> {
  if (kind === 'complete') {
    const content = (await provider.complete(request(false))).choices[0]?.message.content;
    return typeof content === 'string' ? content.length : -1;
  }
  let length = 0;
  for await (const chunk of provider.stream(request(true)) as AsyncIterable<CompletionChunk>) length += chunk.choices[0]?.delta.content?.length ?? 0;
  return length;
}

try {
  const lengths = await Promise.all(Array.from({ length: Number(calls) }, one));
  process.stdout.write(`ok ${lengths.join(' ')}\n`);
} catch (err) {
  process.stdout.write(`error ${(err as { code?: string }).code}: ${(err as Error).message}\n`);
} finally {
  await provider.close();
}
