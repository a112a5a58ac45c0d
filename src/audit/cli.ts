/** `warden audit verify FILE`: streams a JSON-lines audit file and checks the hash chain. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ChainVerifier } from './chain.js';

export interface CliIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const USAGE = `Usage: warden audit verify FILE

Checks the hash chain of a JSON-lines audit file written by Warden's file sink:
every record's seq follows the previous one, its prev_hash is the previous record's
hash, and its hash matches its content. Exits 0 when the chain is intact, 1 at the
first broken record (its seq and line are printed), 2 on usage or read errors.
`;

export async function runAuditCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io[cmd === undefined ? 'stderr' : 'stdout'].write(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd !== 'verify') {
    io.stderr.write(`unknown audit command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (rest.length !== 1) {
    io.stderr.write(`audit verify takes exactly one FILE\n\n${USAGE}`);
    return 2;
  }
  const file = rest[0]!;
  const verifier = new ChainVerifier();
  let lineNo = 0;
  try {
    const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        io.stdout.write(`BROKEN ${file}:${lineNo}: seq ${verifier.last.seq + 1}: line is not valid JSON\n`);
        rl.close();
        return 1;
      }
      const c = verifier.push(rec);
      if (!c.ok) {
        io.stdout.write(`BROKEN ${file}:${lineNo}: seq ${c.seq}: ${c.reason}\n`);
        rl.close();
        return 1;
      }
    }
  } catch (err) {
    io.stderr.write(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return 2;
  }
  const head = verifier.last;
  io.stdout.write(`ok ${file}: ${verifier.count} record(s), chain intact, head seq ${head.seq} hash ${head.hash}\n`);
  return 0;
}
