/**
 * Each command's --help against the parser that reads its flags (README, "Running": "Every
 * command has --help"): every flag the parser takes is listed, with its short form, and every flag
 * the help lists is one the command takes (given before --help, an unknown flag is a usage error).
 */
import { describe, expect, it } from 'vitest';
import { VERIFY_OPTIONS } from '../../src/audit/cli.js';
import type { Options } from '../../src/cli/args.js';
import { OPTIONS as RENDER_OPTIONS } from '../../src/cli/render.js';
import { OPTIONS as SERVE_OPTIONS } from '../../src/cli/serve.js';
import { OPTIONS as POLICY_OPTIONS } from '../../src/policy/cli.js';
import { OPTIONS as REDACT_OPTIONS } from '../../src/redact/cli.js';
import { LINT_OPTIONS } from '../../src/templates/cli.js';
import { runMain as cli } from './helpers/cli.js';

/** `--config FILE` (`-c`), which `redact` and `templates lint` take out before their own parser. */
const CONFIG: Options = { config: { type: 'string', short: 'c' } };

const COMMANDS: Array<{ cmd: string[]; options: Options }> = [
  { cmd: ['serve'], options: SERVE_OPTIONS },
  { cmd: ['render'], options: RENDER_OPTIONS },
  { cmd: ['policy', 'eval'], options: POLICY_OPTIONS.eval! },
  { cmd: ['policy', 'test'], options: POLICY_OPTIONS.test! },
  { cmd: ['policy', 'check'], options: POLICY_OPTIONS.check! },
  { cmd: ['redact'], options: { ...REDACT_OPTIONS, ...CONFIG } },
  { cmd: ['audit', 'verify'], options: VERIFY_OPTIONS },
  { cmd: ['templates', 'lint'], options: { ...LINT_OPTIONS, ...CONFIG } },
];

/** A value each string flag accepts, so only the flag's name is on trial. */
const VALUES: Record<string, string> = { config: 'deploy/local/warden.yaml', format: 'json', mode: 'mask', profile: 'standard', 'from-seq': '1', 'from-hash': '0'.repeat(64) };

describe('--help lists the flags each command takes, and only those', () => {
  it.each(COMMANDS.map((c) => [c.cmd.join(' '), c] as const))('warden %s', async (_, { cmd, options }) => {
    const help = await cli([...cmd, '--help']);
    expect(help.code).toBe(0);
    // The help's own layout: `Usage: warden …` first, as every command has it.
    expect(help.stdout).toMatch(new RegExp(`^Usage: warden ${cmd.join(' ')}`));
    for (const [name, o] of Object.entries(options)) {
      const shown = o.short === undefined ? new RegExp(`(^|[\\s,(])--${name}\\b`, 'm') : new RegExp(`^\\s+-${o.short}, --${name}\\b`, 'm');
      expect(help.stdout, `--${name}${o.short ? ` (-${o.short})` : ''}`).toMatch(shown);
    }
    // Each flag in the help's option lines is taken: given before --help it is read, not refused.
    const listed = new Set([...help.stdout.matchAll(/^ {2,}(?:-\w, )?--([a-z][-a-z]*)/gm)].map((m) => m[1]!));
    for (const name of listed) {
      expect(Object.keys(options), `--${name} listed in the help`).toContain(name);
      const args = options[name]!.type === 'string' ? [`--${name}`, VALUES[name] ?? 'x'] : [`--${name}`];
      const r = await cli([...cmd, ...args, '--help']);
      expect([r.code, r.stderr], `${cmd.join(' ')} ${args.join(' ')} --help`).toEqual([0, '']);
    }
  });
});
