/**
 * `warden redact [--config FILE] [--profile P] [--mode M] [--jsonl] [--detect]`
 *
 * Reads plain text (or, with --jsonl, one {"text": "..."} object per line) on stdin and writes
 * the redacted text (or one {"text": "..."} line per input line). With --detect it writes, per
 * input line, {"findings":[{"entity","start","end","score"}]} with offsets in UTF-16 code units
 * of the original line. Exit codes: 0 ok, 1 error, 2 usage, 3 some input was blocked.
 * A --jsonl / --detect line longer than MAX_REDACT_LINE_BYTES stops the run (exit 1).
 */
import { parse, usageText, UsageError } from '../cli/args.js';
import { readAllCapped, stdinReadFailure, stdinUnreadable } from '../cli/stdin.js';
import { formatLocation, isWardenError, WardenError } from '../pipeline/errors.js';
import type { RedactionDecision, RedactionMode } from '../pipeline/types.js';
import { scanPromptText } from './findings-cache.js';
import { createRedactor } from './redactor.js';
import type { RedactionConfig } from './types.js';
import { MIB } from '../pipeline/sizes.js';

export interface RedactCliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `Usage: warden redact [--config FILE] [--profile P] [--mode M] [--jsonl] [--detect]

Redacts PII and secrets from stdin and writes the redacted text to stdout.

Options:
  -c, --config FILE   A Warden config file: its redaction section (profiles, custom entities,
                      allow-lists) is used, so the text is redacted exactly as the sidecar does
      --profile P     Redaction profile (built in: standard, strict; default: the configured default)
      --mode M        Mode for every entity: mask | hash | tokenize | block | allow
      --jsonl         Read one {"text": "..."} object per line, write one {"text": "..."} per line
      --detect        Write {"findings":[{"entity","start","end","score"}]} per input line instead
                      (offsets in UTF-16 code units of the original line)
  -h, --help          Show this help

Exit codes: 0 ok, 1 error, 2 usage error, 3 some input was blocked.
`;

/**
 * Longest input line --jsonl / --detect read (as `audit verify` caps a record line): a line is
 * held whole while it is redacted, so without a cap one endless line would grow until node runs
 * out of string length and crashes with a stack trace.
 */
export const MAX_REDACT_LINE_BYTES = 16 * MIB;

/**
 * Most plain text (neither --jsonl nor --detect) read: it is redacted as one text, held whole, and
 * the redaction takes about ten times its size in memory; past this it is refused, not left to
 * grow until node fails.
 */
export const MAX_REDACT_TEXT_BYTES = 64 * MIB;

export interface RedactCliOptions {
  /** The line cap; tests lower it. */
  maxLineBytes?: number;
  /** The plain-text cap; tests lower it. */
  maxTextBytes?: number;
}

const MODES: readonly string[] = ['mask', 'hash', 'tokenize', 'block', 'allow'];

interface CliArgs {
  profile?: string;
  mode?: RedactionMode;
  jsonl: boolean;
  detect: boolean;
  help: boolean;
}

/** The flags, read by the parser every command shares (cli/args.ts), so mistakes read alike. */
export const OPTIONS = {
  profile: { type: 'string' },
  mode: { type: 'string' },
  jsonl: { type: 'boolean' },
  detect: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseArgs(argv: string[]): CliArgs | string {
  let values;
  try {
    ({ values } = parse(argv, OPTIONS));
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  const mode = values.mode as string | undefined;
  if (mode !== undefined && !MODES.includes(mode)) return `--mode must be one of ${MODES.join(', ')}`;
  return {
    ...(values.profile !== undefined ? { profile: values.profile as string } : {}),
    ...(mode !== undefined ? { mode: mode as RedactionMode } : {}),
    jsonl: values.jsonl === true,
    detect: values.detect === true,
    help: values.help === true,
  };
}

function write(stream: NodeJS.WritableStream, s: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(s)) resolve();
    else stream.once('drain', () => resolve());
  });
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The lines of a byte stream, as readline splits them (LF, CRLF or a lone CR ends a line; a last
 * line without an end counts), but never holding more than `maxBytes` of one line: past it, a
 * `payload_too_large` error at `stdin:LINE` at once, without reading on to the line's end.
 * Splitting on bytes is safe for UTF-8: CR and LF never occur inside a multi-byte character.
 */
export async function* readLines(stream: NodeJS.ReadableStream, maxBytes: number): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let held = 0;
  let lineNo = 0;
  let afterCr = false; // a CR ended the last line: an LF right after it belongs to that end
  const take = (): string => {
    const line = Buffer.concat(parts, held).toString('utf8');
    parts = [];
    held = 0;
    return line;
  };
  const hold = (piece: Buffer): void => {
    if (held + piece.length > maxBytes) {
      throw new WardenError('payload_too_large', `line is longer than ${maxBytes} bytes`, { location: { file: 'stdin', line: lineNo + 1 } });
    }
    if (piece.length > 0) parts.push(piece);
    held += piece.length;
  };
  for await (const c of stream) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    let start = 0;
    if (afterCr && chunk.length > 0) {
      if (chunk[0] === LF) start = 1;
      afterCr = false;
    }
    for (let i = start; i < chunk.length; i++) {
      const b = chunk[i];
      if (b !== LF && b !== CR) continue;
      hold(chunk.subarray(start, i));
      lineNo++;
      yield take();
      if (b === CR) {
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === LF) i++;
        } else afterCr = true;
      }
      start = i + 1;
    }
    hold(chunk.subarray(start));
  }
  if (held > 0) yield take();
}

export async function runRedactCli(argv: string[], io: RedactCliIo, config: RedactionConfig = {}, opts: RedactCliOptions = {}): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    await write(io.stderr, usageText(args, 'redact'));
    return 2;
  }
  if (args.help) {
    await write(io.stdout, USAGE);
    return 0;
  }
  let blocked = false;
  try {
    const redactor = createRedactor(config);
    const decision: RedactionDecision = {
      profile: args.profile ?? redactor.defaultProfile,
      entities: [],
      modes: {},
      reidentify: false,
      fail_open: false,
      ...(args.mode ? { mode: args.mode } : {}),
    };
    const plan = redactor.plan(decision);
    const detectEntities = new Set(plan.modes.keys());

    const detectLine = (text: string): string => {
      // Read as a prompt is (JSON escapes decoded too): it reports what redaction would replace.
      const res = scanPromptText(redactor.scanner, text, { entities: detectEntities, thresholds: plan.thresholds });
      return JSON.stringify({
        findings: res.findings.map((f) => ({ entity: f.entity, start: f.start, end: f.end, score: f.score })),
      });
    };
    /** Redacts one input; a blocked input yields null and a message on stderr naming entity types. */
    const redactOne = async (text: string, where: string): Promise<string | null> => {
      try {
        return redactor.session(decision, []).redactText(text);
      } catch (err) {
        if (isWardenError(err) && err.code === 'redaction_blocked') {
          blocked = true;
          await write(io.stderr, `${where}: ${err.code}: ${err.message}\n`);
          return null;
        }
        throw err;
      }
    };

    if (!args.jsonl && !args.detect) {
      const text = await readAllCapped(io.stdin, opts.maxTextBytes ?? MAX_REDACT_TEXT_BYTES, 'split it, or use --jsonl, whose lines may each be up to 16 MiB');
      const out = await redactOne(text, 'stdin');
      if (out !== null) await write(io.stdout, out);
      return blocked ? 3 : 0;
    }
    let lineNo = 0;
    for await (const line of readLines(io.stdin, opts.maxLineBytes ?? MAX_REDACT_LINE_BYTES)) {
      lineNo++;
      let text = line;
      if (args.jsonl) {
        if (line.trim() === '') continue;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch {
          throw new WardenError('invalid_request', 'not a JSON object', { location: { file: 'stdin', line: lineNo } });
        }
        const t = (obj as { text?: unknown } | null)?.text;
        if (typeof t !== 'string') {
          throw new WardenError('invalid_request', 'expected {"text": "..."}', { location: { file: 'stdin', line: lineNo } });
        }
        text = t;
      }
      if (args.detect) {
        await write(io.stdout, detectLine(text) + '\n');
        continue;
      }
      const out = await redactOne(text, `stdin:${lineNo}`);
      if (out === null) {
        await write(io.stdout, JSON.stringify({ error: { code: 'redaction_blocked' } }) + '\n');
        continue;
      }
      await write(io.stdout, JSON.stringify({ text: out }) + '\n');
    }
    return blocked ? 3 : 0;
  } catch (err) {
    // stdin that cannot be read is the input's problem, said as a file's is, not an internal error.
    const failure = isWardenError(err) ? undefined : stdinReadFailure(err);
    if (failure !== undefined) {
      await write(io.stderr, stdinUnreadable(failure));
      return 1;
    }
    // `stdin:LINE: code: message` for a bad line; `warden: code: message` when no input is at fault.
    const e = isWardenError(err) ? err : new WardenError('internal', 'internal error');
    const where = e.location?.file !== undefined ? formatLocation(e.location) : 'warden';
    await write(io.stderr, `${where}: ${e.code}: ${e.message}\n`);
    return 1;
  }
}
