/**
 * The process logger (pino). Secrets must never reach a log line, so every path that could carry
 * one is redacted by pino itself, whatever the caller passes: authorization headers, API keys,
 * tokens, passwords, secret values. Callers still must not log prompts or variable values; the
 * redaction here is the safety net, not the policy.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { MIB } from '../pipeline/sizes.js';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerConfig {
  level: LogLevel;
  /** `json` (one object per line, the default) or `text` (human-readable, for a terminal). */
  format?: 'json' | 'text';
  /** Fields on every line, e.g. `{ service: 'warden', environment: 'development' }`. */
  base?: Record<string, unknown>;
}

/** Keys whose values are secrets wherever they appear (top level, one or two levels deep). */
const SECRET_KEYS = [
  'authorization',
  'Authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'api_key',
  'apiKey',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'bearer',
  'password',
  'secret',
  'client_secret',
  'hmac_key',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of SECRET_KEYS) {
    const k = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    const sep = k.startsWith('[') ? '' : '.';
    paths.push(k, `*${sep}${k}`, `*.*${sep}${k}`);
  }
  return paths;
}

export const REDACTED = '[REDACTED]';

/**
 * @param destination  where lines go (tests pass a collecting stream); stdout by default.
 */
export function createLogger(config: LoggerConfig, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: config.level,
    base: { pid: process.pid, ...config.base },
    redact: { paths: redactPaths(), censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  const out = destination ?? stdoutDestination();
  return pino(options, config.format === 'text' ? textStream(out) : out);
}

/** Most log text waiting for stdout (see stdoutDestination); past it, lines are dropped. */
const MAX_HELD_LOG_BYTES = 4 * MIB;

/** Whether stdout's 'error' listener is in place (one per process). */
let stdoutErrorsHeard = false;

/**
 * Log lines go through `process.stdout`, the same queue as the `stdout` audit sink's records:
 * one writer owns fd 1, so a line and a record never tear each other. (A synchronous writer of
 * its own on fd 1 did: when the pipe was nearly full, each writer's partial writes landed inside
 * the other's lines, and the captured chain no longer verified.) On a pipe `process.stdout` is
 * asynchronous: a reader that stopped reading does not block the event loop (a blocking writer
 * froze every request, /readyz and the shutdown deadline); lines wait in its queue, and while
 * more than MAX_HELD_LOG_BYTES wait, new ones are dropped. On a file or a terminal it writes
 * synchronously, as before.
 */
function stdoutDestination(): DestinationStream {
  // A closed reader (EPIPE) ends logging, never the process; the audit sink on stdout listens too.
  // Once per process: every runtime a process builds shares this stdout.
  if (!stdoutErrorsHeard) {
    stdoutErrorsHeard = true;
    process.stdout.on('error', () => undefined);
  }
  return {
    write(line: string) {
      if (process.stdout.writableLength > MAX_HELD_LOG_BYTES) return;
      process.stdout.write(line);
    },
  };
}

const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f\u2028\u2029]/;
// eslint-disable-next-line no-control-regex -- the same set, to replace them all
const CONTROLS = /[\u0000-\u001f\u007f\u2028\u2029]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * The message with its control characters escaped (`\n`, else `\u001b`): the message is written
 * bare (the other fields go through JSON.stringify), and a newline in it would start what reads as
 * a record of its own.
 */
function oneLine(msg: string): string {
  if (!CONTROL.test(msg)) return msg;
  return msg.replace(CONTROLS, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** JSON.stringify escapes the other control characters in a field's value, not these two. */
const LINE_SEPARATORS = /[\u2028\u2029]/g;

/** A field's value as JSON, on one line as the message is (U+2028 and U+2029 written as escapes). */
function fieldValue(v: unknown): string {
  return JSON.stringify(v).replace(LINE_SEPARATORS, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** Rewrites pino's JSON lines as `time LEVEL msg key=value ...` for people reading a terminal. */
function textStream(out: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      let text = `${String(obj.time ?? '')} ${String(obj.level ?? '').toUpperCase().padEnd(5)} ${oneLine(String(obj.msg ?? ''))}`;
      for (const [k, v] of Object.entries(obj)) {
        if (SKIP.has(k)) continue;
        text += ` ${k}=${fieldValue(v)}`;
      }
      out.write(`${text}\n`);
    },
  };
}
