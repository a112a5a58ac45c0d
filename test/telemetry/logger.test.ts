import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED } from '../../src/telemetry/index.js';

const CANARY = 'CANARY-SECRET-9f8e7d';

function capture(): { lines: string[]; stream: { write(s: string): void } } {
  const lines: string[] = [];
  return { lines, stream: { write: (s: string) => void lines.push(s) } };
}

describe('createLogger', () => {
  it('writes JSON lines with level label, time, base fields', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', base: { service: 'warden', environment: 'test' } }, stream);
    log.info({ request_id: 'r1' }, 'hello');
    log.debug('not at info');
    expect(lines).toHaveLength(1);
    const obj = JSON.parse(lines[0]!);
    expect(obj).toMatchObject({ level: 'info', msg: 'hello', service: 'warden', environment: 'test', request_id: 'r1' });
    expect(typeof obj.time).toBe('string');
  });

  it('honours the configured level', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'warn' }, stream);
    log.info('dropped');
    log.warn('kept');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['kept']);
  });

  it('redacts secrets wherever they sit: headers, api keys, tokens, nested', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info' }, stream);
    log.info(
      {
        authorization: `Bearer ${CANARY}`,
        headers: { authorization: `Bearer ${CANARY}`, 'x-api-key': CANARY, cookie: CANARY, accept: 'application/json' },
        provider: { api_key: CANARY, base_url: 'https://x' },
        req: { headers: { Authorization: CANARY } },
        token: CANARY,
        identity: { token: CANARY },
        password: CANARY,
      },
      'request',
    );
    const line = lines.join('');
    expect(line).not.toContain(CANARY);
    const obj = JSON.parse(line);
    expect(obj.headers.accept).toBe('application/json');
    expect(obj.headers.authorization).toBe(REDACTED);
    expect(obj.headers['x-api-key']).toBe(REDACTED);
    expect(obj.provider).toEqual({ api_key: REDACTED, base_url: 'https://x' });
    expect(obj.req.headers.Authorization).toBe(REDACTED);
    expect(obj.identity.token).toBe(REDACTED);
  });

  it('child loggers keep redaction', () => {
    const { lines, stream } = capture();
    const child = createLogger({ level: 'info' }, stream).child({ component: 'providers' });
    child.warn({ upstream: { api_key: CANARY } }, 'x');
    expect(lines.join('')).not.toContain(CANARY);
    expect(JSON.parse(lines[0]!).component).toBe('providers');
  });

  it('text format prints one readable line per record, still redacted', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', format: 'text' }, stream);
    log.info({ port: 8700, api_key: CANARY }, 'listening');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\S+ INFO {2}listening .*port=8700/);
    expect(lines[0]).toContain(`api_key="${REDACTED}"`);
    expect(lines[0]).not.toContain(CANARY);
  });

  it('text format keeps a record on one line: control characters in the message are escaped', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', format: 'text' }, stream);
    log.warn('first\n2026-01-01T00:00:00.000Z ERROR forged\r\tend\u2028\u001b[31m');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.indexOf('\n')).toBe(lines[0]!.length - 1);
    expect(lines[0]).not.toContain('\r');
    expect(lines[0]).toContain('first\\n2026-01-01T00:00:00.000Z ERROR forged\\r\\tend\\u2028\\u001b[31m');
    // A message without any is written as it is.
    log.info('plain message');
    expect(lines[1]).toMatch(/^\S+ INFO {2}plain message\n$/);
  });

  it('text format keeps a record on one line: line separators in a field value are escaped too', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', format: 'text' }, stream);
    log.warn({ path: 'templates/a\u2028b\u2029c\nd' }, 'cannot watch path for changes');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/[\u2028\u2029]/);
    expect(lines[0]).toContain('path="templates/a\\u2028b\\u2029c\\nd"');
  });

  it('works with a real Writable stream', async () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        cb();
      },
    });
    createLogger({ level: 'info' }, sink).error({ err_code: 'x' }, 'boom');
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(chunks.join('')).level).toBe('error');
  });
});
