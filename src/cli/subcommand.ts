/**
 * The front of a tool with a single subcommand (`warden audit verify`, `warden templates lint`),
 * so every such tool answers help and mistakes alike: bare `warden TOOL` prints the usage to
 * stderr (exit 2); `--help`, `-h` or `help` in place of the subcommand, or `--help`/`-h` after
 * it, print it to stdout (exit 0); any other subcommand is a usage error (exit 2).
 */

/** Stream-like outputs, as the module-owned tools take them. */
export interface ToolIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** The subcommand's own arguments, or the exit code when the command line ended here. */
export function subcommandArgs(argv: readonly string[], io: ToolIO, tool: string, subcommand: string, usage: string): string[] | number {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io[cmd === undefined ? 'stderr' : 'stdout'].write(usage);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd !== subcommand) {
    io.stderr.write(`unknown ${tool} command "${cmd}"\n\n${usage}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(usage);
    return 0;
  }
  return rest;
}
