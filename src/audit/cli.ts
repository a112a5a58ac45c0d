/** `warden audit verify FILE`: streams a JSON-lines audit file and checks the hash chain. */
import { groupHelpTopic, parse, UsageError, usageText, type Options } from '../cli/args.js';
import { ChainVerifier, GENESIS_HASH, NOT_JSON, type ChainStart } from './chain.js';
import { MAX_RECORD_DEPTH, nestsDeeperThan } from './line-depth.js';
import { MAX_AUDIT_LINE_BYTES } from './sinks.js';
import { openRegularFile, readFailure } from '../pipeline/regular-file.js';

export interface CliIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `Usage: warden audit verify [--from-hash HASH [--from-seq N] | --continue] [--skip-non-records] FILE

Checks the hash chain of a JSON-lines audit file written by Warden's file sink:
every record's seq follows the previous one, its prev_hash is the previous record's
hash, its hash matches its content, and its line is exactly the canonical text
Warden wrote (a line rewritten with duplicate members or other spacing is broken).
Warden ends each line with a lone LF and writes no blank line: a blank line, or a
line ended by CRLF or CR, means the file was edited and is broken too.
Exits 0 when the chain is intact, 1 at the first broken record (its seq and line
are printed), 2 on usage or read errors.

A file that does not start the chain (a rotated segment) is verified from where the
previous one ended:
  --from-hash HASH   The first record's prev_hash must be HASH (the head hash printed
                     for the previous segment)
  --from-seq N       ... and its seq must be N + 1 (the previous head seq)
  --continue         Take the first record's own seq and prev_hash as the start (print
                     them, compare them with the previous segment's head yourself)

Records captured from the stdout sink share the stream with Warden's log lines:
  --skip-non-records Skip the lines that are not audit records (not a JSON object
                     with seq, prev_hash and hash members: log lines) instead of
                     reporting them broken; the skipped lines are counted. Blank
                     lines and CRLF or CR line ends (a tty, a collector) are
                     accepted too, and counted

  -h, --help         Show this help
`;

/**
 * A line that is an audit record (or a damaged one): a JSON object with the chain's members.
 * Anything else in a captured stdout is a log line, skipped with --skip-non-records.
 */
function looksLikeRecord(line: string): boolean {
  // Not parsed (a parse would build every level, see line-depth.ts): taken as a damaged record,
  // which the verifier then calls too deep. No log line nests that deep either.
  if (nestsDeeperThan(line, MAX_RECORD_DEPTH)) return true;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return false;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return 'seq' in value && 'prev_hash' in value && 'hash' in value;
}

const HASH_RE = /^[0-9a-f]{64}$/;

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `text` with control characters (and line separators) written as `\uXXXX`. */
function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * The magic numbers of the compressors a log rotation uses. A rotated segment left compressed
 * (`audit.jsonl.1.gz`) is not an edited audit file: reported as "not valid UTF-8" it would read as
 * tampering (exit 1), where it only needs decompressing (a read error, exit 2). No audit line
 * starts with these bytes (a line is a JSON object, `{`; a log line is text).
 */
const COMPRESSED: ReadonlyArray<readonly [string, readonly number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/** The compressor whose magic number `chunk` (a file's first bytes) starts with, if any. */
function compressedBy(chunk: Buffer): string | undefined {
  for (const [kind, magic] of COMPRESSED) {
    if (chunk.length >= magic.length && magic.every((b, i) => chunk[i] === b)) return kind;
  }
  return undefined;
}

/** What --skip-non-records let through that Warden never writes; only the kinds seen. */
function acceptedOddities(blank: number, crlf: number, cr: number): string {
  let out = blank > 0 ? `, ${blank} blank line(s) skipped` : '';
  if (crlf > 0) out += `, ${crlf} CRLF line end(s)`;
  if (cr > 0) out += `, ${cr} CR line end(s)`;
  return out;
}

export const VERIFY_OPTIONS = {
  'from-hash': { type: 'string' },
  'from-seq': { type: 'string' },
  continue: { type: 'boolean' },
  'skip-non-records': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

function usageError(io: CliIO, message: string): number {
  io.stderr.write(usageText(message, 'audit verify'));
  return 2;
}

/** A file that cannot be read: `file: file_unreadable: message` (exit 2, as README says). */
function readError(io: CliIO, file: string, reason: string): number {
  io.stderr.write(`${file}: file_unreadable: cannot read the file (${reason})\n`);
  return 2;
}

export async function runAuditCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    io.stderr.write(USAGE);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // `audit help verify` is `audit verify --help`; anything else after it is a usage error.
    try {
      groupHelpTopic(cmd, rest, ['verify']);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr.write(usageText(err.message, 'audit'));
      return 2;
    }
    io.stdout.write(USAGE);
    return 0;
  }
  if (cmd !== 'verify') {
    io.stderr.write(usageText(`unknown command '${cmd}'`, 'audit'));
    return 2;
  }
  // The CLI's one parser (src/cli/args.ts), before `--help` is honoured: an unknown flag next to
  // it is a usage error, as in every command. `--` ends the flags; `-` is a FILE (stdin).
  let parsed;
  try {
    parsed = parse(rest, VERIFY_OPTIONS, true);
  } catch (err) {
    if (err instanceof UsageError) return usageError(io, err.message);
    throw err;
  }
  const { values, positionals: files } = parsed;
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const fromHash = values['from-hash'] as string | undefined;
  const seqText = values['from-seq'] as string | undefined;
  const cont = values.continue === true;
  const skipNonRecords = values['skip-non-records'] === true;
  if (fromHash !== undefined && !HASH_RE.test(fromHash)) return usageError(io, '--from-hash takes a hash: 64 lowercase hex digits');
  if (seqText !== undefined && (!/^\d+$/.test(seqText) || !Number.isSafeInteger(Number(seqText)))) return usageError(io, '--from-seq takes a whole number');
  const fromSeq = seqText === undefined ? undefined : Number(seqText);
  if (files.length !== 1) return usageError(io, 'takes exactly one FILE');
  if (cont && (fromHash !== undefined || fromSeq !== undefined)) return usageError(io, '--continue and --from-hash/--from-seq exclude each other');
  if (fromSeq !== undefined && fromHash === undefined) return usageError(io, '--from-seq needs --from-hash');
  const path = files[0]!;
  // Other commands read stdin for `-`; verify reads a regular file only (see openRegularFile below).
  if (path === '-') return usageError(io, "FILE must be a file: '-' (stdin) is not read; write a stream, or a decompressed segment, to a file first");
  // The path as printed: control characters escaped, so a file named with a newline and "ok …"
  // cannot print a verdict line of its own (a script may verify every file of a directory).
  const file = printable(path);
  const start: ChainStart = cont ? {} : fromHash !== undefined ? { hash: fromHash, seq: fromSeq } : { seq: 0, hash: GENESIS_HASH };
  const verifier = new ChainVerifier(start);
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  let lineNo = 0;
  let skipped = 0;
  /** What --skip-non-records accepted besides log lines: blank lines, CRLF and lone-CR line ends. */
  let blank = 0;
  let crlf = 0;
  let cr = 0;
  let broken: string | undefined;
  /** The current line's bytes so far (a line may span chunks). */
  let parts: Buffer[] = [];
  let partLen = 0;
  /** The line a CR ended when that CR was a chunk's last byte: the next byte says CRLF or lone CR. */
  let pendingCR: number | undefined;
  /** The line number of the last record read, and of a last record with no line end after it. */
  let lastRecordLine = 0;
  let unterminated: number | undefined;

  /** `last`: the file's final line, with no line end after it. */
  const endLine = (last = false): boolean => {
    lineNo++;
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partLen);
    parts = [];
    partLen = 0;
    let line: string;
    try {
      line = decoder.decode(bytes);
    } catch {
      broken = `BROKEN ${file}:${lineNo}: seq ${verifier.last.seq + 1}: line is not valid UTF-8`;
      return false;
    }
    if (lineNo === 1 && line.charCodeAt(0) === 0xfeff) {
      // Kept by the decoder (ignoreBOM), named for what it is rather than "not valid JSON": an
      // editor that saved the file wrote it (Warden writes none), also in a capture of stdout.
      broken = `BROKEN ${file}:1: seq ${verifier.last.seq + 1}: the file starts with a byte order mark (the file was edited: Warden writes none)`;
      return false;
    }
    if (line.trim() === '') {
      // Warden writes no blank line: one in a file sink's file was put there by an edit.
      if (skipNonRecords) {
        blank++;
        return true;
      }
      broken = `BROKEN ${file}:${lineNo}: seq ${verifier.last.seq + 1}: blank line (${line === '' ? '' : 'whitespace only; '}Warden writes none)`;
      return false;
    }
    if (skipNonRecords && !looksLikeRecord(line)) {
      skipped++;
      return true;
    }
    const c = verifier.pushLine(line);
    if (!c.ok) {
      // Cut short with no newline after it: what a crash mid-write leaves, and what a read of a
      // file Warden is appending to can see of the line being written. Said so, not just "JSON".
      const reason = last && c.reason === NOT_JSON ? `${NOT_JSON}, and it is the last line, with no newline: a torn write (or one still in progress, if Warden is writing this file now)` : c.reason;
      broken = `BROKEN ${file}:${lineNo}: seq ${c.seq}: ${reason}`;
      return false;
    }
    lastRecordLine = lineNo;
    return true;
  };
  /**
   * Line `at` was ended by a CR (with an LF after it: CRLF). Warden ends its lines with a lone LF,
   * so in a file sink's file this is an edit (a Windows editor, a transfer in text mode); a
   * captured stdout may have them from a tty. Reported after the line itself was checked, so it
   * names the seq of the record that line holds.
   */
  const crEnd = (at: number, withLF: boolean): boolean => {
    if (skipNonRecords) {
      if (withLF) crlf++;
      else cr++;
      return true;
    }
    broken = `BROKEN ${file}:${at}: seq ${verifier.last.seq}: ${withLF ? 'CRLF' : 'CR'} terminator (Warden ends lines with LF only)`;
    return false;
  };
  const addBytes = (b: Buffer): boolean => {
    if (b.length === 0) return true;
    partLen += b.length;
    if (partLen > MAX_AUDIT_LINE_BYTES) {
      broken = `BROKEN ${file}:${lineNo + 1}: seq ${verifier.last.seq + 1}: line is longer than ${MAX_AUDIT_LINE_BYTES} bytes (no record is)`;
      return false;
    }
    parts.push(b);
    return true;
  };

  // A regular file only: a FIFO would make verify wait for a writer for good.
  let fh;
  let size;
  try {
    fh = await openRegularFile(path);
    size = (await fh.stat()).size;
  } catch (err) {
    await fh?.close().catch(() => undefined);
    return readError(io, file, readFailure(err));
  }
  // The file as it was when opened, not what is appended while it is read: a file a writer
  // appends to faster than it is read would otherwise be read for as long as it grows, and the
  // verdict's head would depend on how fast the two ran. A size of 0 is read to its end all the
  // same: a file system that reports no size (a FUSE or proc file) must not verify as empty.
  const input = fh.createReadStream(size === 0 ? {} : { start: 0, end: size - 1 });
  let first = true;
  try {
    outer: for await (const chunk of input as AsyncIterable<Buffer>) {
      if (first) {
        // A regular file's first read holds far more than the longest magic number.
        first = false;
        const kind = compressedBy(chunk);
        if (kind !== undefined) return readError(io, file, `a ${kind}-compressed file: decompress it first, e.g. into a file of its own`);
      }
      let pos = 0;
      if (pendingCR !== undefined && chunk.length > 0) {
        const withLF = chunk[0] === LF;
        if (!crEnd(pendingCR, withLF)) break;
        pendingCR = undefined;
        if (withLF) pos = 1;
      }
      let nextLF = -2;
      let nextCR = -2;
      while (pos < chunk.length) {
        // Cached: each search runs once per terminator found, not once per line over the whole chunk.
        if (nextLF !== -1 && nextLF < pos) nextLF = chunk.indexOf(LF, pos);
        if (nextCR !== -1 && nextCR < pos) nextCR = chunk.indexOf(CR, pos);
        const end = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
        if (end === -1) {
          if (!addBytes(chunk.subarray(pos))) break outer;
          break;
        }
        if (!addBytes(chunk.subarray(pos, end))) break outer;
        if (!endLine()) break outer;
        pos = end + 1;
        if (chunk[end] === CR) {
          // The LF of a CRLF belongs to this line end (it ends no blank line of its own).
          if (pos === chunk.length) {
            pendingCR = lineNo;
            break;
          }
          const withLF = chunk[pos] === LF;
          if (!crEnd(lineNo, withLF)) break outer;
          if (withLF) pos++;
        }
      }
    }
    // A CR as the file's last byte: nothing follows to make it a CRLF.
    if (broken === undefined && pendingCR !== undefined) crEnd(pendingCR, false);
    if (broken === undefined && partLen > 0) {
      // The file ends without a newline: intact records, but an append would be glued onto the
      // last one, so it is said (on stderr: stdout stays the verdict, and the exit stays 0).
      const tail = lineNo + 1;
      if (endLine(true) && verifier.count > 0 && lastRecordLine === tail) unterminated = tail;
    }
  } catch (err) {
    return readError(io, file, readFailure(err));
  } finally {
    input.destroy();
  }
  if (broken !== undefined) {
    io.stdout.write(`${broken}\n`);
    return 1;
  }
  if (unterminated !== undefined) {
    io.stderr.write(`warning: ${file}:${unterminated}: the last line has no trailing newline (a writer appending to this file would glue its line onto it; Warden writes the newline before its next record)\n`);
  }
  const others = skipNonRecords ? `, ${skipped} other line(s) skipped${acceptedOddities(blank, crlf, cr)}` : '';
  io.stdout.write(`ok ${file}: ${verifier.count} record(s), ${chainSummary(verifier, start)}${others}\n`);
  return 0;
}

/**
 * The verdict's chain part. A head is printed only when it is known: with no record read, the
 * start is the head, and a start member left open (no --from-seq, or --continue) is not known.
 */
function chainSummary(verifier: ChainVerifier, start: ChainStart): string {
  if (verifier.count === 0) {
    if (start.hash === undefined) return 'no record to continue from (head not known)';
    if (start.seq === undefined) return `no record after hash ${start.hash} (head seq not known: no --from-seq given)`;
  }
  const head = verifier.last;
  const first = verifier.first;
  const from = first && (first.seq !== 0 || first.hash !== GENESIS_HASH) ? ` from seq ${first.seq + 1} (prev_hash ${first.hash})` : '';
  return `chain intact${from}, head seq ${head.seq} hash ${head.hash}`;
}
