/**
 * The process logger (pino). Secrets must never reach a log line, so every path that could carry
 * one is redacted by pino itself, whatever the caller passes: authorization headers, API keys,
 * tokens, passwords, secret values. Callers still must not log prompts or variable values; the
 * redaction here is the safety net, not the policy.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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

/** Most log text kept while stdout does not take it (see stdoutDestination); past it, lines are dropped. */
const MAX_HELD_LOG_BYTES = 4 * 1024 * 1024;

/**
 * Synchronous writes to fd 1. When stdout is a pipe its descriptor is non-blocking (Node opens
 * it that way), and a reader that stopped reading makes each write fail with EAGAIN: by default
 * the destination then sleeps (blocking the event loop) and retries until the reader comes
 * back, so one log line froze every request, /readyz and the shutdown deadline. Instead the line
 * is held (up to MAX_HELD_LOG_BYTES) and written with the next one once the pipe takes it.
 */
function stdoutDestination(): DestinationStream {
  const out = pino.destination({ dest: 1, sync: true, retryEAGAIN: () => false, maxLength: MAX_HELD_LOG_BYTES });
  // pino's own listener handles EPIPE (logging stops) and re-emits anything else, which still
  // throws as before; only "the pipe is full for now" is left for the next line to retry.
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EAGAIN' && err.code !== 'EBUSY' && err.code !== 'EPIPE') throw err;
  });
  return out;
}

const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

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
      let text = `${String(obj.time ?? '')} ${String(obj.level ?? '').toUpperCase().padEnd(5)} ${String(obj.msg ?? '')}`;
      for (const [k, v] of Object.entries(obj)) {
        if (SKIP.has(k)) continue;
        text += ` ${k}=${JSON.stringify(v)}`;
      }
      out.write(`${text}\n`);
    },
  };
}
