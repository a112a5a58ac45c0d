import { describe, expect, it } from 'vitest';
import { SseError, SseParser, type SseEvent } from '../../src/providers/index.js';

function parseAll(pieces: string[], max?: number): SseEvent[] {
  const p = new SseParser(max);
  return pieces.flatMap((x) => p.push(x));
}

const STREAM = ': keep-alive\n\ndata: {"a":1}\n\nevent: note\nid: 7\ndata: line one\ndata: line two\n\ndata:no-space\n\ndata: [DONE]\n\n';
const EXPECTED: SseEvent[] = [
  { data: '{"a":1}' },
  { event: 'note', id: '7', data: 'line one\nline two' },
  { data: 'no-space', id: '7' },
  { data: '[DONE]', id: '7' },
];

describe('SseParser', () => {
  it('parses comments, multi-line data, event and id fields, [DONE]', () => {
    expect(parseAll([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events however the text is split', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      expect(parseAll([STREAM.slice(0, i), STREAM.slice(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
    expect(parseAll([...STREAM])).toEqual(EXPECTED);
  });

  it('accepts CRLF and CR line ends, including a CRLF split across pieces', () => {
    const crlf = STREAM.replace(/\n/g, '\r\n');
    for (let i = 0; i <= crlf.length; i++) {
      expect(parseAll([crlf.slice(0, i), crlf.slice(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
    expect(parseAll([STREAM.replace(/\n/g, '\r')])).toEqual(EXPECTED);
  });

  it('field without colon and empty data line', () => {
    expect(parseAll(['data\n\n', 'data:\ndata: x\n\n'])).toEqual([{ data: '' }, { data: '\nx' }]);
  });

  it('an event with no data is not dispatched', () => {
    expect(parseAll(['event: ping\n\n', 'retry: 10\n\n'])).toEqual([]);
  });

  it('end() reports a truncated event', () => {
    const p = new SseParser();
    p.push('data: {"a"');
    expect(p.end()).toEqual({ truncated: true });
    const q = new SseParser();
    q.push('data: x\n\n');
    expect(q.end()).toEqual({ truncated: false });
  });

  it('end() reads a pending data: [DONE], its line ended or not, as the end marker; anything more is truncated', () => {
    for (const tail of ['data: [DONE]', 'data:[DONE]', 'data: [DONE]\n', 'data: [DONE]\r']) {
      const p = new SseParser();
      p.push(`data: x\n\n${tail}`);
      expect(p.end(), tail).toEqual({ truncated: false, done: true });
    }
    for (const tail of ['data: [DONE', 'data: [DONE]\ndata: x', 'data: [DONE] ', 'event: x\ndata: {']) {
      const p = new SseParser();
      p.push(tail);
      expect(p.end(), tail).toEqual({ truncated: true });
    }
  });

  it('a line that spans thousands of pieces comes out whole and in order; end() and the size bound see all of it', () => {
    // Past a few pieces an unterminated line is held in arrays, joined in blocks (not by `+=`).
    const value = Array.from({ length: 5000 }, (_, i) => String.fromCharCode(97 + (i % 26)) + (i % 7)).join('');
    const line = `data: ${value}`;
    expect(parseAll([...line, '\r', '\n', '\r\n'])).toEqual([{ data: value }]);
    const pieces: string[] = [];
    for (let i = 0; i < line.length; i += 3) pieces.push(line.slice(i, i + 3));
    expect(parseAll([...pieces, '\n\n'])).toEqual([{ data: value }]);
    const p = new SseParser();
    for (const c of 'data: [DONE]') p.push(c);
    expect(p.end()).toEqual({ truncated: false, done: true });
    const q = new SseParser();
    for (const c of line) q.push(c);
    expect(q.end()).toEqual({ truncated: true });
    expect(() => parseAll([...line], value.length)).toThrow(SseError);
  });

  it('bounds the size of an event, with or without line ends', () => {
    expect(() => parseAll(['data: ' + 'x'.repeat(200)], 100)).toThrow(SseError);
    expect(() => parseAll(Array.from({ length: 30 }, () => 'data: 0123456789\n'), 100)).toThrow(SseError);
    expect(parseAll(['data: ' + 'x'.repeat(90) + '\n\n'], 100)).toHaveLength(1);
  });
});
