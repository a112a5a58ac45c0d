/** Runs `warden redact` the way src/main.ts wires it, for the child-process CLI test. */
import { runRedactCli } from '../../src/redact/cli.js';

process.exitCode = await runRedactCli(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
