import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalJson,
  computeRecordHash,
  createAuditLog,
  createAuditStage,
  createFileSink,
  createStreamSink,
  GENESIS_HASH,
  promptHmac,
  readLastLine,
  runAuditCli,
  verifyChain,
  type AuditSink,
} from '../../src/audit/index.js';
import { outboundText } from '../../src/pipeline/canonical-json.js';
import { WardenError } from '../../src/pipeline/errors.js';
import type { AuditRecord, RedactionSession } from '../../src/pipeline/ports.js';
import type { Template } from '../../src/pipeline/types.js';
import type { RenderedText } from '../../src/templates/provenance.js';
import { createRedactor } from '../../src/redact/index.js';
import type { Detector } from '../../src/redact/types.js';
import { renderTemplate } from '../../src/templates/renderer.js';
import { allowDecision, makeContext, makeTemplate } from '../stage-context.js';
import { body, verify } from './helpers.js';

const HMAC_KEY = 'test-hmac-key-0123456789abcdef';
const CANARY_VAR = 'CANARY-VARIABLE-3c2b1a';
const CANARY_SECRET = 'CANARY-SECRET-9f8e7d';
const CANARY_TOKEN = 'CANARY-TOKEN-eyJhbGciOi';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function collector(): { sink: AuditSink; lines: string[] } {
  const lines: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString('utf8').split('\n').filter(Boolean)));
  return { sink: createStreamSink(out, 'test'), lines };
}

const template: Template = {
  id: 'ops/incident-brief', version: 1, owner: 'sre', sensitivity: 'restricted', description: 'd',
  approvals: [{ by: 'a', ticket: 'SEC-1', at: '2026-01-01' }, { by: 'b', ticket: 'SEC-2', at: '2026-03-01' }, { by: 'c', ticket: 'SEC-0', at: '2025-01-01' }],
  allowed_services: [], models: [],
  variables: {
    symptoms: { source: 'request', type: 'string', required: true, pii: true },
    code: { source: 'secret', type: 'string', required: true, pii: false, ref: 'file:secrets/escalation-code' },
  },
  messages: [{ role: 'user', content: '{{symptoms}} {{code}}' }],
};

describe('canonical JSON and the chain', () => {
  it('serializes strings exactly as JSON.stringify does', () => {
    for (const s of ['plain', 'q"uote', 'back\\slash', 'ctl\u0001', 'nl\n', 'emoji 😀', 'lone \ud800', 'é', '\u2028']) {
      expect(canonicalJson(s)).toBe(JSON.stringify(s));
      expect(canonicalJson({ [s]: s })).toBe(JSON.stringify({ [s]: s }));
    }
  });

  it('sorts keys and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: undefined, c: 'x' }], e: null })).toBe('{"a":[1,{"c":"x"}],"b":1,"e":null}');
  });

  it('links records from genesis and detects tampering, deletion and reordering', async () => {
    const { sink, lines } = collector();
    const log = createAuditLog({ sinks: [sink] });
    const records: AuditRecord[] = [];
    for (let i = 0; i < 5; i++) records.push(await log.append(body(i)));
    expect(records[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(records[3]!.prev_hash).toBe(records[2]!.hash);
    expect(lines.map((l) => JSON.parse(l))).toEqual(records);
    expect(verifyChain(records)).toEqual({ ok: true, count: 5, head: { seq: 5, hash: records[4]!.hash } });

    const tampered = records.map((r) => ({ ...r }));
    tampered[2] = { ...tampered[2]!, status: 'error' };
    expect(verifyChain(tampered)).toMatchObject({ ok: false, seq: 3, reason: 'hash does not match the record content' });
    const rehashed = { ...tampered[2]!, hash: computeRecordHash(tampered[2]!) };
    expect(verifyChain([...records.slice(0, 2), rehashed, ...records.slice(3)])).toMatchObject({ ok: false, seq: 4, reason: expect.stringMatching(/prev_hash/) });
    expect(verifyChain([records[0], records[2]])).toMatchObject({ ok: false, seq: 3, reason: 'expected seq 2, found 3' });
    expect(verifyChain([records[1]])).toMatchObject({ ok: false, seq: 2 });
  });

  it('keeps one consistent chain under concurrent appends', async () => {
    const { sink, lines } = collector();
    const log = createAuditLog({ sinks: [sink] });
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(body(i))));
    expect(new Set(all.map((r) => r.seq)).size).toBe(200);
    expect(verifyChain(lines.map((l) => JSON.parse(l))).ok).toBe(true);
  });

  it('turns a failing sink into audit_unavailable', async () => {
    const broken: AuditSink = {
      name: 'broken',
      write: () => Promise.reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' })),
      flush: async () => {},
      close: async () => {},
    };
    const log = createAuditLog({ sinks: [collector().sink, broken] });
    const err = await log.append(body(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WardenError);
    expect((err as WardenError).code).toBe('audit_unavailable');
    // The caller learns the code, never the sink's name (a file sink's is a path on this host).
    expect((err as WardenError).message).toBe('the audit log is unavailable (ENOSPC)');
    expect((err as WardenError).details).toBeUndefined();
  });
});

describe('file sink', () => {
  it('appends, fsyncs on flush, and resumes the chain after a restart', async () => {
    const file = join(dir, 'chain.jsonl');
    const first = createAuditLog({ sinks: [createFileSink(file)] });
    for (let i = 0; i < 3; i++) await first.append(body(i));
    await first.close();
    const second = createAuditLog({ sinks: [createFileSink(file)] });
    await second.open();
    expect(second.head.seq).toBe(3);
    const r = await second.append(body(3));
    expect(r.seq).toBe(4);
    await second.flush();
    await second.close();
    const records = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 4 });
  });

  it('refuses to resume from a torn or forged last line', async () => {
    const file = join(dir, 'torn.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    await log.append(body(0));
    await log.close();
    await appendFile(file, '{"seq":2,"hash":"ab');
    await expect(createAuditLog({ sinks: [createFileSink(file)] }).open()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/not valid JSON/) });
    const forged = join(dir, 'forged.jsonl');
    await writeFile(forged, `${JSON.stringify({ ...body(0), seq: 9, prev_hash: GENESIS_HASH, hash: 'f'.repeat(64) })}\n`);
    await expect(createAuditLog({ sinks: [createFileSink(forged)] }).append(body(1))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it('refuses to resume a file whose end was edited (CRLF line ends, blank lines), as verify calls it broken', async () => {
    const records = async (name: string): Promise<string> => {
      const file = join(dir, name);
      const log = createAuditLog({ sinks: [createFileSink(file)] });
      for (let i = 0; i < 2; i++) await log.append(body(i));
      await log.close();
      return file;
    };
    const crlf = await records('crlf.jsonl');
    await writeFile(crlf, (await readFile(crlf, 'utf8')).replace(/\n/g, '\r\n'));
    const blank = await records('blank-end.jsonl');
    await appendFile(blank, '\n');
    const onlyBlank = join(dir, 'only-blank.jsonl');
    await writeFile(onlyBlank, '\n\n');
    for (const [file, why] of [
      [crlf, /carriage return/],
      [blank, /ends with a blank line/],
      [onlyBlank, /ends with a blank line/],
    ] as const) {
      const log = createAuditLog({ sinks: [createFileSink(file)] });
      const before = await readFile(file, 'utf8');
      // The caller is told the code only; the operator's open (at start) is told why.
      await expect(log.append(body(9))).rejects.toMatchObject({ code: 'audit_unavailable' });
      const refusal = await log.open().then(() => undefined, (err: unknown) => err as WardenError);
      expect(refusal?.code).toBe('audit_unavailable');
      expect(refusal?.message).toMatch(why);
      expect(refusal?.message).toMatch(/cannot resume the hash chain \(run "warden audit verify"\)$/);
      await log.close();
      expect(await readFile(file, 'utf8')).toBe(before); // nothing appended after the edit
    }
    // A file that lacks only its last newline (a crash after the write) still resumes.
    const unterminated = await records('no-final-newline.jsonl');
    await writeFile(unterminated, (await readFile(unterminated, 'utf8')).trimEnd());
    const log = createAuditLog({ sinks: [createFileSink(unterminated)] });
    await expect(log.append(body(2))).resolves.toMatchObject({ seq: 3 });
    await log.close();
  });

  it('refuses to resume from a last line verify calls broken: rewritten text, or a hashed but malformed link', async () => {
    const file = join(dir, 'rewritten-end.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    for (let i = 0; i < 2; i++) await log.append(body(i));
    await log.close();
    const text = await readFile(file, 'utf8');
    const [first, last] = text.trimEnd().split('\n') as [string, string];
    const rec = JSON.parse(last) as Record<string, unknown>;
    // A record with its hash recomputed over an edited link: its content verifies, its link does not.
    const rehashed = (edit: Record<string, unknown>): string => {
      const r = { ...rec, ...edit, hash: undefined };
      return `${canonicalJson(r).slice(0, -1)},"hash":"${computeRecordHash(r)}"}`;
    };
    for (const [name, line, why] of [
      ['duplicate member', last.replace('{"action"', '{"status":"error","action"'), /last record does not verify \(line is not the canonical text/],
      ['trailing space', `${last} `, /line is not the canonical text/],
      ['tab', last.replace('{"action"', '{\t"action"'), /line is not the canonical text/],
      ['seq 2.5', rehashed({ seq: 2.5 }), /seq is not a whole number from 1 up \(found 2\.5\)/],
      ['seq -7', rehashed({ seq: -7 }), /seq is not a whole number from 1 up \(found -7\)/],
      ['seq a string', rehashed({ seq: 'CANARY-SEQ' }), /seq is not a whole number from 1 up \(found a string\)/],
      // Past 2^53 - 1 a number no longer counts by one (2^53 + 1 is 2^53): the next record's seq
      // would repeat. The largest safe seq is the last a chain can have (it resumed, and forked).
      ['seq 2^53 - 1', rehashed({ seq: Number.MAX_SAFE_INTEGER }), /seq 9007199254740991 is the largest a chain can count to/],
      ['seq 2^53', rehashed({ seq: 2 ** 53 }), /seq is not a whole number from 1 up \(found 9007199254740992\)/],
      ['prev_hash not a hash', rehashed({ prev_hash: 'nope' }), /prev_hash is not a hash/],
      ['nested 20000 deep', last.replace('{"action"', `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)},"action"`), /the record nests too deeply to check/],
    ] as const) {
      const edited = `${first}\n${line}\n`;
      await writeFile(file, edited);
      const resumed = createAuditLog({ sinks: [createFileSink(file)] });
      const refusal = await resumed.open().then(() => undefined, (err: unknown) => err as WardenError);
      expect(refusal?.code, name).toBe('audit_unavailable');
      expect(refusal?.message, name).toMatch(why);
      expect(refusal?.message, name).not.toContain('CANARY');
      await expect(resumed.append(body(9)), name).rejects.toMatchObject({ code: 'audit_unavailable' });
      await resumed.close();
      expect(await readFile(file, 'utf8'), name).toBe(edited); // nothing appended after the edit
      expect((await verify(file)).code, name).toBe(1); // and verify calls it broken too
    }
  });

  it('writes the record at seq 2^53 - 1, then refuses every append (fail closed, said once) rather than write one verify calls broken', async () => {
    // Found: resumed from a (forged) last record at 2^53 - 2, the log wrote seq 2^53 - 1 and then
    // 2^53, 2^53 again (2^53 + 1 rounds), ... each of which verify calls broken.
    const file = join(dir, 'near-the-cap.jsonl');
    const r = { ...body(0), seq: Number.MAX_SAFE_INTEGER - 1, prev_hash: 'a'.repeat(64) };
    const hash = computeRecordHash(r);
    await writeFile(file, `${canonicalJson(r).slice(0, -1)},"hash":"${hash}"}\n`);
    const errors: string[] = [];
    const log = createAuditLog({ sinks: [createFileSink(file)], logger: { error: (_obj, msg) => void errors.push(String(msg)) } });
    const changes: boolean[] = [];
    log.onAvailabilityChange((available) => changes.push(available));
    await log.open();
    await expect(log.append(body(1))).resolves.toMatchObject({ seq: Number.MAX_SAFE_INTEGER });
    expect([log.available(), changes]).toEqual([false, [false]]);
    for (let i = 2; i < 4; i++) {
      const refusal = await log.append(body(i)).then(() => undefined, (err: unknown) => err as WardenError);
      expect([refusal?.code, refusal?.message]).toEqual(['audit_unavailable', 'the audit log is unavailable (ESEQEXHAUSTED)']);
    }
    expect(errors).toEqual([
      'the audit chain reached seq 9007199254740991 (2^53 - 1), the largest it can count to: no record can follow it; rename the audit file(s) and restart (a new chain starts at seq 1)',
    ]);
    await log.close();
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(2);
    expect(await verify('--continue', file)).toMatchObject({ code: 0, out: expect.stringContaining('head seq 9007199254740991') });
  });

  it('refuses to resume from a last line that is not UTF-8, which verify calls broken (not read leniently as U+FFFD)', async () => {
    const file = join(dir, 'not-utf8-end.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    await log.append(body(0));
    await log.append({ ...body(1), request_id: 'req-\uFFFD' }); // a record that holds U+FFFD (EF BF BD)
    await log.close();
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('\uFFFD', 'utf8'));
    const edited = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]); // one byte that is no UTF-8
    await writeFile(file, edited);
    expect(await verify(file)).toMatchObject({ code: 1, out: expect.stringMatching(/:2: seq 2: line is not valid UTF-8/) });
    const resumed = createAuditLog({ sinks: [createFileSink(file)] });
    await expect(resumed.open()).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/its last line is not valid UTF-8; cannot resume the hash chain/) });
    await resumed.close();
    expect(readFileSync(file)).toEqual(edited);
  });

  it('reads the last line of a file larger than one chunk', async () => {
    const file = join(dir, 'big.txt');
    await writeFile(file, `${'x'.repeat(70_000)}\n${'y'.repeat(100_000)}\n\n`);
    expect(await readLastLine(file)).toBe('y'.repeat(100_000));
    expect(await readLastLine(join(dir, 'none'))).toBeUndefined();
  });

  it('writes the lines appended in one turn together, in chain order, before any of them resolves', async () => {
    const file = join(dir, 'batch.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    await log.append(body(0));
    // 50 appends in the same turn share one write; each resolves only once its line is in the file.
    const appended = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(body(i + 1)).then(async (r) => ({ r, text: await readFile(file, 'utf8') }))));
    for (const { r, text } of appended) expect(text).toContain(`"hash":"${r.hash}"`);
    const records = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 51 });
    await log.close();
  });

  it('writes a line at once, before append returns, when the sink has been idle', async () => {
    const file = join(dir, 'idle.jsonl');
    const sink = createFileSink(file);
    await sink.write('{"n":0}'); // opens the file
    for (let i = 1; i <= 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const written = sink.write(`{"n":${i}}`);
      // Already in the file: no wait for the end of the turn.
      expect(readFileSync(file, 'utf8').endsWith(`{"n":${i}}\n`)).toBe(true);
      await written;
    }
    // Lines that come together still go out in call order.
    await Promise.all([sink.write('{"n":4}'), sink.write('{"n":5}'), sink.write('{"n":6}')]);
    expect(readFileSync(file, 'utf8')).toBe([0, 1, 2, 3, 4, 5, 6].map((n) => `{"n":${n}}\n`).join(''));
    await sink.close();
  });

  it('fails every request of a batch the device refuses, and every later one', async () => {
    // /dev/full opens for append and fails each write with ENOSPC: a real full disk.
    const log = createAuditLog({ sinks: [createFileSink('/dev/full')] });
    const batch = await Promise.allSettled([log.append(body(0)), log.append(body(1)), log.append(body(2))]);
    for (const r of batch) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'audit_unavailable', message: expect.stringMatching(/ENOSPC/) } });
    await expect(log.append(body(3))).rejects.toMatchObject({ code: 'audit_unavailable' });
  });

  it('reports an unwritable file as audit_unavailable', async () => {
    const log = createAuditLog({ sinks: [createFileSink(join(dir, 'no-such-dir', 'a.jsonl'))] });
    await expect(log.append(body(0))).rejects.toMatchObject({ code: 'audit_unavailable', message: expect.stringMatching(/ENOENT/) });
  });
});

describe('audit stage', () => {
  function fullContext() {
    const redaction: RedactionSession = {
      redactMessages: (m) => m,
      redactTools: (t) => t,
      redactParams: (p) => ({ ...p }),
      maskSecretsForCaller: (m) => m.slice(),
      maskSecretsInJson: (v) => v,
      processCompletion: (r) => r,
      processStream: (c) => c,
      report: () => ({ counts: { EMAIL: 2 }, responseCounts: { PHONE: 1 }, nonTextParts: 0, leaks: 0, detectorFailures: 0 }),
    };
    const outbound = [{ role: 'user' as const, content: `[EMAIL] ${CANARY_SECRET}` }];
    return makeContext(
      {
        template: { id: template.id, version: 1 },
        variables: { symptoms: `${CANARY_VAR} alice@example.com` },
        credentials: { bearer: CANARY_TOKEN, peer: { address: '127.0.0.1', local: true, transport: 'tcp' } },
        // Ingress stamps the monotonic clock (epoch-sized): five milliseconds ago.
        receivedAt: performance.timeOrigin + performance.now() - 5,
      },
      {
        principal: { kind: 'kubernetes', subject: 'system:serviceaccount:ops:pager', namespace: 'ops', service_account: 'pager', pod: 'pager-1', issuer: 'https://k8s', audiences: ['warden'] },
        template,
        decision: allowDecision({ id: 'dec-42', reasons: ['ops may run incident briefs'], secrets: ['file:secrets/escalation-code'] }),
        provider: 'echo',
        secrets: new Map([['file:secrets/escalation-code', CANARY_SECRET]]),
        secretsInPrompt: new Set(['file:secrets/escalation-code']),
        messages: [{ role: 'user', content: `${CANARY_VAR} alice@example.com ${CANARY_SECRET}` }],
        outbound,
        redaction,
        usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      },
    );
  }

  it('records names, ids and counts, never values (canary), with an HMAC of the outbound prompt', async () => {
    const { sink, lines } = collector();
    const log = createAuditLog({ sinks: [sink] });
    const stage = createAuditStage({ log, hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'policy-rev-1', configuredModel: (m) => m === 'echo' });
    const stamped = performance.now(); // at most when fullContext stamps receivedAt (5 ms back)
    const ctx = fullContext();
    await stage.run(ctx);
    const recordedWithin = performance.now() - stamped + 5;
    await stage.auditRequest(ctx); // the pipeline's finally: no second record
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    for (const canary of [CANARY_VAR, CANARY_SECRET, CANARY_TOKEN, 'alice@example.com', 'pager-1']) expect(line).not.toContain(canary);
    const rec = JSON.parse(line) as AuditRecord;
    expect(rec).toMatchObject({
      request_id: 'req-1',
      trace_id: ctx.trace.traceId,
      decision_id: 'dec-42',
      principal: { kind: 'kubernetes', subject: 'system:serviceaccount:ops:pager', namespace: 'ops', service_account: 'pager' },
      action: 'prompt.execute',
      template: { id: 'ops/incident-brief', version: 1, sensitivity: 'restricted' },
      approval: 'SEC-2',
      environment: 'test',
      policy_revision: 'policy-rev-1',
      decision: { allow: true, reasons: ['ops may run incident briefs'] },
      secret_refs: ['file:secrets/escalation-code'],
      redaction: { counts: { EMAIL: 2 }, response_counts: { PHONE: 1 }, non_text_parts: 0, leaks: 0, detector_failures: 0 },
      prompt_hmac: promptHmac(HMAC_KEY, ctx.outbound),
      provider: 'echo',
      model: 'echo',
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      status: 'ok',
      error_code: null,
      stream: false,
      seq: 1,
    });
    // Only the documented principal fields (the line writes them in canonical, sorted order).
    expect(Object.keys(rec.principal!).sort()).toEqual(['kind', 'namespace', 'service_account', 'subject']);
    // Measured on the clock ingress stamped with (Date.now() drifts from it by milliseconds): no
    // more than the test saw pass from the stamp to the record (0.01 for the µs rounding).
    expect(rec.latency_ms).toBeGreaterThanOrEqual(5);
    expect(rec.latency_ms).toBeLessThanOrEqual(recordedWithin + 0.01);
    expect(rec.prompt_hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(rec.prompt_hmac).not.toBe(promptHmac('another-key-0123456789', ctx.outbound));
  });

  it('keeps a bounded part of a policy\'s reasons: a record stays under the line limit, verifies, and is resumed from', async () => {
    // A rule that makes one reason per entry of a large data list: some 18 MiB of reasons.
    const reasons = Array.from({ length: 300_000 }, (_, i) => `entry ${String(i).padStart(6, '0')} of the data list is not allowed here, see the runbook`);
    const file = join(dir, 'many-reasons.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    const stage = createAuditStage({ log, hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'rev', configuredModel: (m) => m === 'echo' });
    const ctx = makeContext({}, { decision: allowDecision({ allow: false, reasons }), error: new WardenError('policy_denied', 'denied by policy') });
    await stage.run(ctx);
    await log.close();
    expect(await verify(file)).toMatchObject({ code: 0, out: expect.stringMatching(/: 1 record\(s\), chain intact/) });
    const rec = JSON.parse(readFileSync(file, 'utf8')) as AuditRecord;
    const kept = rec.decision!.reasons;
    expect(kept.slice(0, -1)).toEqual(reasons.slice(0, kept.length - 1));
    expect(kept.at(-1)).toBe(`(${reasons.length - kept.length + 1} more reason(s) not recorded: a record keeps 65536 characters of reasons)`);
    expect(kept.slice(0, -1).join('').length).toBeLessThanOrEqual(65_536);
    // A restart resumes the chain from it.
    const again = createAuditLog({ sinks: [createFileSink(file)] });
    await again.open();
    expect(again.head.seq).toBe(1);
    await again.close();
    // A short list is kept whole.
    const few = makeContext({}, { decision: allowDecision({ allow: false, reasons: ['a', 'b'] }), error: new WardenError('policy_denied', 'denied by policy') });
    const { sink, lines } = collector();
    await createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'rev', configuredModel: () => true }).run(few);
    expect((JSON.parse(lines[0]!) as AuditRecord).decision!.reasons).toEqual(['a', 'b']);
  });

  it('says when a detector failed and was skipped under the decision\'s fail_open (the prompt went out partly unredacted)', async () => {
    // A detector that throws (with the text in its message, which must not reach the record).
    const broken: Detector = {
      name: 'broken',
      entities: ['BROKEN_THING'],
      detect(text) {
        throw new Error(`boom ${text}`);
      },
    };
    const redactor = createRedactor({ profiles: { withBroken: { entities: ['EMAIL_ADDRESS', 'BROKEN_THING'] } } }, { detectors: [broken] });
    const records: AuditRecord[] = [];
    for (const failOpen of [true, false]) {
      const { sink, lines } = collector();
      const stage = createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' });
      const ctx = fullContext();
      ctx.redaction = redactor.session({ profile: 'withBroken', entities: [], modes: {}, reidentify: false, fail_open: failOpen }, []);
      const messages = [{ role: 'user' as const, content: `${CANARY_VAR} mail alice@example.com` }];
      if (failOpen) ctx.outbound = ctx.redaction.redactMessages(messages);
      else ctx.error = (() => { try { ctx.redaction.redactMessages(messages); } catch (err) { return err as WardenError; } throw new Error('fail closed did not refuse'); })();
      await stage.run(ctx);
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toContain(CANARY_VAR);
      records.push(JSON.parse(lines[0]!) as AuditRecord);
    }
    // Failed open: the other detectors ran (the email is counted) and the record says one was skipped.
    expect(records[0]!.redaction).toEqual({ counts: { EMAIL_ADDRESS: 1 }, response_counts: {}, non_text_parts: 0, leaks: 0, detector_failures: 1 });
    expect(records[0]!.status).toBe('ok');
    // Failed closed: refused, and nothing was skipped.
    expect(records[1]!).toMatchObject({ status: 'error', error_code: 'redaction_failed', redaction: { detector_failures: 0 } });
  });

  it('records a model name nobody configured as null: it is the caller data and may hold anything', async () => {
    const { sink, lines } = collector();
    const stage = createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' });
    const ctx = fullContext();
    ctx.request.model = 'CANARY-MODEL jane@example.com';
    await stage.run(ctx);
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('CANARY-MODEL');
    expect(JSON.parse(lines[0]!).model).toBeNull();
  });

  it('a prepared record HMACs the outbound text prepare saw; a replaced outbound prompt is HMACed anew', async () => {
    const { sink, lines } = collector();
    const stage = createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' });
    // Prepared, then recorded: the record carries the HMAC prepare made. (The serialised outbound
    // text is memoised per array, so an edit inside the same array after prepare is not seen: the
    // HMAC in the record is the one of the text as it was at prepare time.)
    const ctx = fullContext();
    const atPrepare = promptHmac(HMAC_KEY, ctx.outbound);
    stage.prepare!(ctx);
    ctx.outbound![0]!.content = 'edited in place after prepare';
    await stage.run(ctx);
    expect(lines[0]).not.toContain(CANARY_VAR);
    // A stage replaced the outbound prompt after prepare: the record HMACs what was finally sent.
    const changed = fullContext();
    stage.prepare!(changed);
    changed.outbound = [{ role: 'user', content: 'something else' }];
    await stage.run(changed);
    // Nothing rendered: the record says null, prepared or not.
    const bare = makeContext({});
    stage.prepare!(bare);
    await stage.run(bare);
    expect(lines.map((l) => (JSON.parse(l) as AuditRecord).prompt_hmac)).toEqual([
      atPrepare,
      promptHmac(HMAC_KEY, changed.outbound),
      null,
    ]);
  });

  it('HMACs a repeated templated prompt as HMAC-SHA256 of the text sent, whether its prefix state is kept yet or not', async () => {
    const { sink, lines } = collector();
    const stage = createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' });
    const tpl = makeTemplate({
      id: 't/long',
      variables: {
        code: { source: 'secret', type: 'string', required: true, pii: false },
        msg: { source: 'request', type: 'string', required: true, pii: false },
      },
      messages: [
        { role: 'system', content: `${'Answer briefly and never promise refunds. '.repeat(30)}Code: {{code}}` },
        { role: 'user', content: '{{msg}}' },
      ],
    });
    const expected: string[] = [];
    for (let i = 0; i < 5; i++) {
      const json: Array<string | undefined> = [];
      const provenance: RenderedText[] = [];
      const messages = renderTemplate(tpl, { code: CANARY_SECRET, msg: `question ${i}` }, json, provenance);
      const ctx = makeContext({}, { messages, outbound: messages.slice(), contentJson: json, renderProvenance: provenance });
      expect(outboundText(ctx)!.prefix).toBeDefined();
      if (i % 2 === 0) stage.prepare!(ctx);
      await stage.run(ctx);
      expected.push(createHmac('sha256', HMAC_KEY).update(canonicalJson(messages)).digest('hex'));
    }
    expect(lines.map((l) => (JSON.parse(l) as AuditRecord).prompt_hmac)).toEqual(expected);
    expect(new Set(expected).size).toBe(5);
    for (const line of lines) expect(line).not.toContain(CANARY_SECRET);
  });

  it('a record drafted by prepare is the record built without it, with the outcome as it is at the end', async () => {
    const drafted = collector();
    const plain = collector();
    const at = Date.parse('2026-06-01T12:00:00Z');
    const make = (sink: ReturnType<typeof collector>['sink']) =>
      createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'rev-1', configuredModel: (m) => m === 'echo', now: () => at });
    const withDraft = make(drafted.sink);
    const without = make(plain.sink);
    for (const outcome of ['ok', 'error'] as const) {
      const a = fullContext();
      const b = fullContext();
      withDraft.prepare!(a);
      // What the rest of the request decides after the draft: the outcome and the usage.
      for (const ctx of [a, b]) {
        ctx.usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 };
        if (outcome === 'error') ctx.error = new WardenError('upstream_timeout', 'slow');
      }
      await withDraft.run(a);
      await without.run(b);
    }
    const strip = (line: string) => {
      const r = JSON.parse(line) as Record<string, unknown>;
      // Latency is read at the moment each record is finished (and so the hashes differ);
      // every other member must match.
      return { ...r, latency_ms: 0, hash: '', prev_hash: '' };
    };
    expect(drafted.lines.map(strip)).toEqual(plain.lines.map(strip));
    expect(JSON.parse(drafted.lines[1]!)).toMatchObject({ status: 'error', error_code: 'upstream_timeout', usage: { total_tokens: 10 }, seq: 2 });
    // Each drafted line is the canonical text of its record plus its hash: the chain verifies.
    const records = drafted.lines.map((l) => JSON.parse(l) as AuditRecord);
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 2 });
  });

  it('records failures with their code', async () => {
    const { sink, lines } = collector();
    const stage = createAuditStage({ log: createAuditLog({ sinks: [sink] }), hmacKey: HMAC_KEY, environment: 'test', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' });
    const ctx = makeContext({}, { error: new WardenError('policy_denied', 'denied') });
    await stage.auditRequest(ctx);
    expect(JSON.parse(lines[0]!)).toMatchObject({ status: 'error', error_code: 'policy_denied', principal: null, template: null, prompt_hmac: null });
  });

  it('refuses a short HMAC key', () => {
    expect(() => createAuditStage({ log: createAuditLog({ sinks: [collector().sink] }), hmacKey: 'short', environment: 'e', getPolicyRevision: () => 'r', configuredModel: (m) => m === 'echo' })).toThrow(/hmac key/);
  });
});

describe('warden audit verify', () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } }, out, err };
  }

  it('reports an intact chain, then the first tampered record', async () => {
    const file = join(dir, 'cli.jsonl');
    const log = createAuditLog({ sinks: [createFileSink(file)] });
    for (let i = 0; i < 4; i++) await log.append(body(i));
    await log.close();
    const ok = io();
    expect(await runAuditCli(['verify', file], ok.io)).toBe(0);
    expect(ok.out.join('')).toMatch(/ok .*: 4 record\(s\), chain intact, head seq 4/);

    const lines = (await readFile(file, 'utf8')).split('\n');
    lines[2] = lines[2]!.replace('"status":"ok"', '"status":"error"');
    await writeFile(file, lines.join('\n'));
    const bad = io();
    expect(await runAuditCli(['verify', file], bad.io)).toBe(1);
    expect(bad.out.join('')).toBe(`BROKEN ${file}:3: seq 3: hash does not match the record content\n`);

    lines[2] = '{not json';
    await writeFile(file, lines.join('\n'));
    const garbage = io();
    expect(await runAuditCli(['verify', file], garbage.io)).toBe(1);
    expect(garbage.out.join('')).toMatch(/:3: seq 3: line is not valid JSON/);
  });

  it('handles usage errors and help', async () => {
    const a = io();
    expect(await runAuditCli([], a.io)).toBe(2);
    const b = io();
    expect(await runAuditCli(['verify', '--help'], b.io)).toBe(0);
    expect(b.out.join('')).toMatch(/Usage: warden audit verify .*FILE/);
    const c = io();
    expect(await runAuditCli(['verify', join(dir, 'missing.jsonl')], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/ENOENT/);
    const d = io();
    expect(await runAuditCli(['frobnicate'], d.io)).toBe(2);
    // An unknown option is a usage error, not a file name.
    const e = io();
    expect(await runAuditCli(['verify', '--bogus'], e.io)).toBe(2);
    expect(e.err.join('')).toBe("warden: unknown option --bogus\nRun 'warden audit verify --help' for usage.\n");
    expect(e.err.join('')).not.toMatch(/cannot read/);
    // `-` reads stdin in the other commands; here it is named as such, not a missing file `-`.
    const f = io();
    expect(await runAuditCli(['verify', '-'], f.io)).toBe(2);
    expect(f.err.join('')).toBe(
      "warden: FILE must be a file: '-' (stdin) is not read; write a stream, or a decompressed segment, to a file first\nRun 'warden audit verify --help' for usage.\n",
    );
  });
});
