import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_REDACT_LINE_BYTES, MAX_REDACT_TEXT_BYTES, runRedactCli } from '../../src/redact/cli.js';

async function run(argv: string[], input: string, opts: { maxLineBytes?: number; maxTextBytes?: number } = {}): Promise<{ code: number; out: string; err: string }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  stdin.end(input);
  const code = await runRedactCli(argv, { stdin, stdout, stderr }, {}, opts);
  return { code, out, err };
}

describe('warden redact CLI', () => {
  it('redacts plain text from stdin, byte for byte elsewhere', async () => {
    const r = await run([], 'Hi, mail ann@example.com\nor call (415) 555-2671.\n');
    expect(r).toEqual({ code: 0, out: 'Hi, mail [EMAIL_ADDRESS]\nor call [PHONE_NUMBER].\n', err: '' });
  });

  it('--jsonl reads and writes one {"text"} object per line; --mode applies to every entity', async () => {
    const r = await run(['--jsonl', '--mode', 'tokenize'], '{"text":"a ann@example.com"}\n\n{"text":"b 536-90-4399"}\n');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ text: 'a <EMAIL_ADDRESS_1>' }, { text: 'b <US_SSN_1>' }]);
  });

  it('--detect prints findings per line with UTF-16 offsets of the original', async () => {
    const line = '😀 ＪＯＨＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ x';
    const r = await run(['--detect'], `${line}\nnothing here\n`);
    const [a, b] = r.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(a.findings).toHaveLength(1);
    expect(a.findings[0].entity).toBe('EMAIL_ADDRESS');
    expect(line.slice(a.findings[0].start, a.findings[0].end)).toBe('ＪＯＨＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ');
    expect(a.findings[0].start).toBe(3);
    expect(typeof a.findings[0].score).toBe('number');
    expect(b).toEqual({ findings: [] });
  });

  it('--detect --jsonl with --profile strict', async () => {
    const r = await run(['--detect', '--jsonl', '--profile', 'strict'], JSON.stringify({ text: 'born 1984-03-12' }) + '\n');
    expect(JSON.parse(r.out).findings.map((f: { entity: string }) => f.entity)).toEqual(['DATE_OF_BIRTH']);
  });

  it('block mode exits 3 and names entity types only', async () => {
    const r = await run(['--jsonl', '--mode', 'block'], '{"text":"CANARY-SECRET-9f8e7d@example.com"}\n{"text":"clean"}\n');
    expect(r.code).toBe(3);
    expect(r.out.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ error: { code: 'redaction_blocked' } }, { text: 'clean' }]);
    expect(r.err).toContain('EMAIL_ADDRESS');
    expect(r.err + r.out).not.toContain('CANARY-SECRET-9f8e7d');
  });

  it('usage errors exit 2; --help exits 0; bad JSON lines name the line', async () => {
    expect((await run(['--mode', 'nope'], '')).code).toBe(2);
    expect((await run(['--frobnicate'], '')).err).toBe("warden: unknown option --frobnicate\nRun 'warden redact --help' for usage.\n");
    const help = await run(['--help'], '');
    expect(help.code).toBe(0);
    expect(help.out).toContain('--detect');
    const bad = await run(['--jsonl'], 'not json\n');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('stdin:1');
    const profile = await run(['--profile', 'unknown'], 'x');
    expect([profile.code, profile.err]).toEqual([1, 'warden: redaction_failed: unknown redaction profile "unknown"\n']);
  });

  it('a line longer than the cap stops the run at that line (exit 1), without waiting for its end', async () => {
    expect(MAX_REDACT_LINE_BYTES).toBe(16 * 1024 * 1024);
    const cap = 64;
    const fits = JSON.stringify({ text: 'x'.repeat(cap - 11) }); // exactly `cap` bytes
    expect(Buffer.byteLength(fits)).toBe(cap);
    for (const argv of [['--jsonl'], ['--detect']]) {
      const r = await run(argv, `${fits}\r\n${'é'.repeat(cap / 2)}x\nnever read\n`, { maxLineBytes: cap });
      expect([r.code, r.err], argv.join()).toEqual([1, `stdin:2: payload_too_large: line is longer than ${cap} bytes\n`]);
      expect(r.out.trim().split('\n'), argv.join()).toHaveLength(1); // the line that fits, and nothing after
    }
    // An endless line (stdin never ends) is refused as soon as it passes the cap: nothing holds it whole.
    const stdin = new PassThrough();
    const sink = new PassThrough().resume();
    let err = '';
    const stderr = new PassThrough().on('data', (d: Buffer) => (err += d.toString('utf8')));
    stdin.write('y'.repeat(cap + 1));
    const code = await runRedactCli(['--detect'], { stdin, stdout: sink, stderr }, {}, { maxLineBytes: cap });
    expect([code, err]).toEqual([1, `stdin:1: payload_too_large: line is longer than ${cap} bytes\n`]);
  });

  it('plain text over the cap stops the run with payload_too_large (exit 1), without reading it all', async () => {
    // Plain text is held whole (and redacted at about ten times its size in memory): bounded, as a line is.
    expect(MAX_REDACT_TEXT_BYTES).toBe(64 * 1024 * 1024);
    const cap = 1024;
    const fits = await run([], 'x'.repeat(cap), { maxTextBytes: cap }); // exactly the cap
    expect([fits.code, fits.err]).toEqual([0, '']);
    const over = await run([], 'x'.repeat(cap + 1), { maxTextBytes: cap });
    expect([over.code, over.out, over.err]).toEqual([1, '', `stdin: payload_too_large: input is larger than ${cap} bytes (split it, or use --jsonl, whose lines may each be up to 16 MiB)\n`]);
    // stdin that never ends is refused once past the cap.
    const stdin = new PassThrough();
    let err = '';
    const stderr = new PassThrough().on('data', (d: Buffer) => (err += d.toString('utf8')));
    stdin.write('y'.repeat(cap + 1));
    const code = await runRedactCli([], { stdin, stdout: new PassThrough(), stderr }, {}, { maxTextBytes: cap });
    expect([code, err]).toEqual([1, `stdin: payload_too_large: input is larger than ${cap} bytes (split it, or use --jsonl, whose lines may each be up to 16 MiB)\n`]);
  });

  it('stdin that cannot be read is named as such, not an internal error', async () => {
    for (const argv of [[], ['--jsonl']]) {
      const stdin = new PassThrough();
      let err = '';
      const stderr = new PassThrough().on('data', (d: Buffer) => (err += d.toString('utf8')));
      setImmediate(() => stdin.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' })));
      const code = await runRedactCli(argv, { stdin, stdout: new PassThrough(), stderr });
      expect([code, err], argv.join()).toEqual([1, 'stdin: file_unreadable: cannot read stdin (EIO)\n']);
    }
  });

  it('a pattern RE2 refuses is named by its key and RE2\'s error kind, no part of it repeated', async () => {
    const stdin = new PassThrough();
    let err = '';
    const stderr = new PassThrough().on('data', (d: Buffer) => (err += d.toString('utf8')));
    stdin.end('x');
    const code = await runRedactCli([], { stdin, stdout: new PassThrough(), stderr }, { customEntities: [{ name: 'EMPLOYEE_ID', pattern: '(CANARY-SECRET-7f3a' }] });
    expect([code, err]).toEqual([1, 'warden: invalid_request: redaction.custom_entities[0].pattern is not a valid RE2 pattern (missing ))\n']);
  });

  it('line ends are read as before: LF, CRLF and a lone CR each end a line', async () => {
    const r = await run(['--detect'], 'a\r\nb\rc\n\nd');
    expect(r.out.trim().split('\n')).toHaveLength(5);
  });

  it('runs as a child process through npx tsx, reading stdin', async () => {
    const entry = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
    const child = spawn('npx', ['tsx', entry, '--jsonl'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    child.stdin.end('{"text":"card 4111 1111 1111 1111, ip 10.1.2.3"}\n');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ text: 'card [CREDIT_CARD], ip [IP_ADDRESS]' });
    // npx and tsx compile the CLI cold in the child: 7 s alone on a loaded 2-core machine, past
    // 20 s beside other test files.
  }, 90_000);
});
