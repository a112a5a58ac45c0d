/**
 * Hot reload under load: calls (plain and streamed, through the official `openai` client) run
 * back to back while the templates and the policy change under them, by file watch and by the
 * reload SIGHUP triggers, with valid and invalid changes. Every call must succeed; every one is
 * served by one set: the template text the upstream received and the limit the policy set
 * (`max_tokens`) come from the same (template, policy) revision pair, and its audit record
 * names exactly that pair. Streams open across a swap finish.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, FIXTURES, startWarden, type WardenFixture } from './helpers/warden.js';

/** What the upstream was sent, by the call's ticket id. */
interface Seen {
  text: string;
  maxTokens: number;
}

/**
 * An OpenAI-compatible upstream that quotes the last message back; a streamed answer comes word
 * by word, a few milliseconds apart, so streams are still open when a reload lands.
 */
async function startEchoUpstream(): Promise<{ url: string; seen: Map<string, Seen>; close(): Promise<void> }> {
  const seen = new Map<string, Seen>();
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(raw) as { stream?: boolean; max_tokens?: number; max_completion_tokens?: number; messages: Array<{ content: string }> };
      const text = body.messages.at(-1)!.content;
      const ticket = /L-\d+/.exec(text)?.[0] ?? '?';
      seen.set(ticket, { text, maxTokens: body.max_completion_tokens ?? body.max_tokens ?? -1 });
      const head = { id: 'chatcmpl-load', created: 1_700_000_000, model: 'gpt-4o-mini' };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ...head,
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content: `saw: ${text}` }, logprobs: null, finish_reason: 'stop' }],
            usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, finish: string | null) =>
        res.write(`data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
      chunk({ role: 'assistant', content: '' }, null);
      const words = `saw: ${text}`.split(' ');
      let i = 0;
      const timer = setInterval(() => {
        if (i < words.length) {
          chunk({ content: (i === 0 ? '' : ' ') + words[i++] }, null);
          return;
        }
        clearInterval(timer);
        chunk({}, 'stop');
        res.end('data: [DONE]\n\n');
      }, 5);
      res.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const probeTemplate = (marker: number) => `id: load/probe
version: 1
owner: sre@example.com
sensitivity: internal
description: A template whose text names the change that wrote it.
retire_after: 2099-12-31
allowed_services: ["support/ticket-bot"]
models: [gpt-4o-mini]
variables:
  ticket_id: { type: string, max_length: 32 }
messages:
  - role: system
    content: You quote the ticket back.
  - role: user
    content: "probe T${marker} for {{ticket_id}} end"
`;

/** The e2e policy with its `max_tokens` read from policy data (`data.load.max_tokens`) plus `offset`. */
const fixturePolicy = readFileSync(join(FIXTURES, 'policies', 'e2e.rego'), 'utf8');
const policyWith = (offset: number) =>
  fixturePolicy
    .replace('"max_tokens": 512', `"max_tokens": data.load.max_tokens + ${offset}`)
    .replace('"secrets": [],', `"secrets": [],\n\t"max_tokens": data.load.max_tokens + ${offset},`);
const dataWith = (base: number) => JSON.stringify({ max_tokens: base });

let upstream: Awaited<ReturnType<typeof startEchoUpstream>>;
let w: WardenFixture;

beforeAll(async () => {
  expect(policyWith(0).match(/data\.load\.max_tokens/g)).toHaveLength(2);
  upstream = await startEchoUpstream();
  w = await startWarden({
    upstreamUrl: upstream.url,
    watch: true,
    files: { 'templates/load/probe.yaml': probeTemplate(0), 'policies/e2e.rego': policyWith(0), 'policies/load/data.json': dataWith(500) },
  });
});

afterAll(async () => {
  await w?.close();
  await upstream?.close();
});

interface Revisions {
  template_revision: string;
  policy_revision: string;
}

describe('hot reload under load', () => {
  it('every call succeeds and is served, and audited, by one (template, policy) revision pair', { timeout: 120_000 }, async () => {
    const admin = w.addresses.admin;
    const ready = async () => (await (await fetch(`${admin}/readyz`)).json()) as Revisions;
    const rejected = async (kind: string) =>
      Number(new RegExp(`warden_reload_total\\{kind="${kind}",outcome="error"[^}]*\\} (\\d+)`).exec(await (await fetch(`${admin}/metrics`)).text())?.[1] ?? NaN);
    const templateFile = join(w.dir, 'templates', 'load', 'probe.yaml');
    const policyFile = join(w.dir, 'policies', 'e2e.rego');
    const dataFile = join(w.dir, 'policies', 'load', 'data.json');
    // Written whole, by rename, as a deploy would: the watch never sees a half-written file.
    const replace = (file: string, text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };

    // Revision → the marker of the change that made it (template text T<n>; the policy's limit, data plus the rule's offset).
    const start = await ready();
    const templateMarkers = new Map<string, number>([[start.template_revision, 0]]);
    const policyLimits = new Map<string, number>([[start.policy_revision, 500]]);

    const templated = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: await w.signer.token('support', 'ticket-bot'), maxRetries: 0, timeout: 30_000 });
    const raw = new OpenAI({ baseURL: `${w.addresses.http}/v1`, apiKey: await w.signer.token('labs', 'raw-bot'), maxRetries: 0, timeout: 30_000 });
    const results: Array<{ ticket: string; requestId: string | null; content: string; stream: boolean; raw: boolean }> = [];
    let next = 0;
    let stop = false;
    let failure: unknown;
    const worker = async (streaming: boolean, rawPrompt = false) => {
      const client = rawPrompt ? raw : templated;
      try {
        await callUntilStopped(client, streaming, rawPrompt);
      } catch (err) {
        // One failed call ends the run: the others stop, and the wait for more results fails
        // with this error (served), instead of waiting for results that will never come.
        failure ??= err;
        stop = true;
        throw err;
      }
    };
    const callUntilStopped = async (client: OpenAI, streaming: boolean, rawPrompt: boolean) => {
      while (!stop) {
        // Paced a little: six workers back to back would take the cores the suite's other files share.
        await new Promise((r) => setTimeout(r, 2));
        const ticket = `L-${next++}`;
        // Warden's `warden` member rides along with the SDK's own parameters.
        const body: OpenAI.ChatCompletionCreateParamsNonStreaming = rawPrompt
          ? { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `raw for ${ticket} end` }] }
          : ({ model: 'gpt-4o-mini', messages: [], warden: { template: 'load/probe@1', variables: { ticket_id: ticket } } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
        if (streaming) {
          const { data, response } = await client.chat.completions.create({ ...body, stream: true }).withResponse();
          let content = '';
          for await (const c of data) content += c.choices[0]?.delta.content ?? '';
          results.push({ ticket, requestId: response.headers.get('x-request-id'), content, stream: true, raw: rawPrompt });
        } else {
          const { data, response } = await client.chat.completions.create(body).withResponse();
          results.push({ ticket, requestId: response.headers.get('x-request-id'), content: data.choices[0]!.message.content ?? '', stream: false, raw: rawPrompt });
        }
      }
    };
    const workers = [worker(false), worker(false), worker(true), worker(true), worker(false, true), worker(true, true)];
    const served = async (n: number) => {
      const from = results.length;
      await eventually(() => {
        if (failure !== undefined) throw failure;
        return results.length >= from + n;
      });
    };

    // A valid change is applied: wait for its revision and remember its marker.
    const applied = async (kind: 'template' | 'policy', before: Revisions, marker: number) => {
      await eventually(async () => (await ready())[`${kind}_revision`] !== before[`${kind}_revision`]);
      const now = await ready();
      if (kind === 'template') templateMarkers.set(now.template_revision, marker);
      else policyLimits.set(now.policy_revision, marker);
      await served(8);
    };
    const refusedOnce = async (kind: 'templates' | 'policies', before: number, revisions: Revisions) => {
      await eventually(async () => (await rejected(kind)) > before);
      expect(await ready()).toEqual(revisions);
      await served(8);
    };

    try {
      await served(8);
      for (let round = 1; round <= 2; round++) {
        const bySighup = round % 2 === 0;
        const base = 500 + 100 * round;
        const reloadBySighup = async (expected: boolean) => {
          if (bySighup) expect(await w.runtime.reload('SIGHUP')).toBe(expected);
        };
        // A template change, a rule change, a data change.
        let before = await ready();
        replace(templateFile, probeTemplate(round));
        await reloadBySighup(true);
        await applied('template', before, round);

        before = await ready();
        replace(policyFile, policyWith(round));
        await reloadBySighup(true);
        await applied('policy', before, base - 100 + round);

        before = await ready();
        replace(dataFile, dataWith(base));
        await reloadBySighup(true);
        await applied('policy', before, base + round);

        // An invalid template, an invalid rule, invalid data: each rejected, the set serving stays.
        before = await ready();
        let errors = await rejected('templates');
        replace(templateFile, `${probeTemplate(99)}  - role: [\n`);
        await reloadBySighup(false);
        await refusedOnce('templates', errors, before);
        replace(templateFile, probeTemplate(round));
        errors = await rejected('policies');
        replace(policyFile, `${policyWith(99)}\ndecision := {\n`);
        await reloadBySighup(false);
        await refusedOnce('policies', errors, before);
        replace(policyFile, policyWith(round));
        errors = await rejected('policies');
        replace(dataFile, '{"max_tokens": ');
        await reloadBySighup(false);
        await refusedOnce('policies', errors, before);
        // Restored to what serves: the same content, so the same revisions.
        replace(dataFile, dataWith(base));
        expect(await w.runtime.reload('check')).toBe(true);
        expect(await ready()).toEqual(before);
        await served(8);
      }
    } finally {
      stop = true;
      // Settled first, so a failure above is the one reported, not a worker's rejection left unheard.
      await Promise.allSettled(workers);
    }
    await Promise.all(workers);

    expect(results.length).toBeGreaterThan(100);
    const records = new Map(w.audit().map((r) => [r.request_id as string, r]));
    const pairs = new Set<string>();
    for (const r of results) {
      const seen = upstream.seen.get(r.ticket);
      expect(seen, r.ticket).toBeDefined();
      // The caller got the answer to what the upstream was sent (whole, streamed or not).
      expect(r.content).toBe(`saw: ${seen!.text}`);
      const record = records.get(r.requestId ?? '');
      expect(record, r.ticket).toBeDefined();
      expect(record!.status).toBe('ok');
      // The template text came from the set the record names (a raw call's record names a set that served), and so did the policy's limit.
      const marker = r.raw ? templateMarkers.get(record!.template_revision) : Number(/probe T(\d+) /.exec(seen!.text)?.[1]);
      expect(marker).toBeDefined();
      expect({ ticket: r.ticket, marker: templateMarkers.get(record!.template_revision) }).toEqual({ ticket: r.ticket, marker });
      expect({ ticket: r.ticket, limit: policyLimits.get(record!.policy_revision) }).toEqual({ ticket: r.ticket, limit: seen!.maxTokens });
      pairs.add(`${record!.template_revision}/${record!.policy_revision}`);
    }
    // The load did span the changes: calls were served by several sets.
    expect(pairs.size).toBeGreaterThanOrEqual(5);
    expect(results.some((r) => r.stream && r.raw)).toBe(true);
    expect(w.logs.filter((l) => /"level":(50|60)/.test(l) && !l.includes('reload rejected'))).toEqual([]);
  });
});
