/**
 * Every module, query and input_term in OPA's compliance cases parses, except where a case
 * expects a parse error, which must then be raised.
 *
 * This test reads ../shared/opa-compliance (outside this repository, beside the checkout),
 * resolved from the repository root. Where that folder is absent (a checkout outside the
 * shared layout) the test logs a note and checks nothing else.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseModule, parseQuery, parseTerm } from '../../../src/policy/rego/ast/index.js';
import { RegoError } from '../../../src/policy/rego/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const casesDir = path.resolve(repoRoot, '../shared/opa-compliance');

interface Case {
  note: string;
  query?: string;
  modules?: string[];
  input_term?: string;
  want_error_code?: string;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (name.endsWith('.yaml') || name.endsWith('.yml')) out.push(p);
  }
  return out;
}

describe('OPA compliance cases (parser)', () => {
  it('parse every module, query and input_term', () => {
    const v1 = path.join(casesDir, 'v1');
    if (!existsSync(v1)) {
      console.info(`note: ${casesDir} is absent; skipping the compliance parse check`);
      return;
    }
    const failures: string[] = [];
    let cases = 0;
    let modules = 0;
    for (const file of yamlFiles(v1)) {
      const doc = parseYaml(readFileSync(file, 'utf8')) as { cases?: Case[] };
      for (const c of doc.cases ?? []) {
        cases++;
        const where = `${path.relative(v1, file)}: ${c.note}`;
        const expectError = c.want_error_code === 'rego_parse_error';
        try {
          (c.modules ?? []).forEach((m, i) => {
            parseModule(m, `${c.note}#${i}.rego`);
            modules++;
          });
          if (c.query !== undefined) parseQuery(c.query);
          if (c.input_term !== undefined) parseTerm(c.input_term);
          if (expectError) failures.push(`${where}: parsed, but the case expects rego_parse_error`);
        } catch (e) {
          if (!(e instanceof RegoError)) failures.push(`${where}: threw a non-RegoError: ${String(e)}`);
          else if (!expectError) failures.push(`${where}: ${String(e)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // The README counts 454 cases; guard against silently reading nothing.
    expect(cases).toBeGreaterThanOrEqual(454);
    expect(modules).toBeGreaterThan(400);
  });
});
