/**
 * Policy data files are read a piece at a time (json-data.ts, pipeline/yaml-value-steps.ts): a
 * data file of several MB read in one step held the event loop for seconds on every hot reload,
 * and the reload's deadline could not stop it. The value must be the one the one-step read
 * gives, a bad file must get the same error at the same place, other callbacks must run while a
 * large file is read, and a given-up load (its AbortSignal: the reload deadline) must stop.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { dataTextSteps, parseDataFile } from '../../../src/policy/rego/data.js';
import { jsonDataSteps } from '../../../src/policy/rego/json-data.js';
import { unmarshalJSON } from '../../../src/policy/rego/builtins/json.js';
import { firstDuplicateKey } from '../../../src/policy/rego/json-unique-keys.js';
import { tooDeepAt } from '../../../src/pipeline/json-depth.js';
import { yamlValueSteps } from '../../../src/pipeline/yaml-value-steps.js';
import { parseYamlValue } from '../../../src/pipeline/yaml-tags.js';
import { runSteps, runStepsYielding } from '../../../src/pipeline/time-slices.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-data-slices-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A deterministic pseudo-random source (the same texts every run). */
function random(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
}

/** The one-step read of JSON data (before): its value, or undefined for text it refuses. */
function jsonAtOnce(text: string, maxDepth: number): unknown {
  try {
    const v = unmarshalJSON(text);
    return firstDuplicateKey(text) || tooDeepAt(v, maxDepth) ? undefined : v;
  } catch {
    return undefined;
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  // Key order too (it is what the revision's hash sees).
  return isDeepStrictEqual(a, b) && JSON.stringify(a, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) === JSON.stringify(b, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

const JSON_SCALARS = ['1', '-0', '"a"', '"b\\"c"', 'true', 'null', '1.5e2', '"\\u0041"', '"k\\\\"', '[]', '{}', ' "x" '];

function jsonText(next: () => number, depth: number): string {
  const r = next();
  if (depth > 4 || r < 0.3) return JSON_SCALARS[Math.floor(next() * JSON_SCALARS.length)]!;
  const items: string[] = [];
  for (let i = Math.floor(next() * 6); i > 0; i--) {
    const key = ['a', 'b', 'c', '__proto__', '1', 'a\\u0062'][Math.floor(next() * 6)]!;
    items.push(r < 0.65 ? `"${key}"${next() < 0.5 ? ' ' : ''}:\n${jsonText(next, depth + 1)}` : jsonText(next, depth + 1));
  }
  return r < 0.65 ? `{${items.join(',')}}` : `[${items.join(' , ')}]`;
}

describe('JSON data read a piece at a time', () => {
  it('gives the one-step value for valid text and nothing for text it refuses, cut at any size', { timeout: 120_000 }, () => {
    const next = random(1);
    const damage = [(s: string) => s, (s: string) => s.slice(0, -1), (s: string) => s.replace(',', ',,'), (s: string) => s.replace(',', ''), (s: string) => s.replace('}', ',}'), (s: string) => `${s} x`, (s: string) => s.replace(':', ''), (s: string) => ` \n${s}\n`];
    const long = ['{"id": 12345678901234567890, "n": [-0, 1e20]}', '{"a": 1e400}'];
    let valid = 0;
    for (let k = 0; k < 600; k++) {
      const base = k < long.length ? long[k]! : jsonText(next, 0);
      for (const change of damage) {
        const text = change(base);
        // Pieces of 1 character: every container is read member by member.
        for (const batch of [1, 3, 8, 20, 1 << 14]) {
          for (const maxDepth of [3, 1000]) {
            const want = jsonAtOnce(text, maxDepth);
            const got = runSteps(jsonDataSteps(text, maxDepth, batch));
            if (!sameValue(got, want)) expect({ text, batch, maxDepth, got }).toEqual({ text, batch, maxDepth, got: want });
            if (want !== undefined) valid++;
          }
        }
      }
    }
    expect(valid).toBeGreaterThan(10_000);
  });
});

function yamlText(next: () => number, depth: number, indent: number): string {
  const pad = ' '.repeat(indent);
  const scalars = ['1', 'x', '"q"', "'s'", 'true', '~', '0x1F', '1.5', '.inf', 'a b', '"a\\tb"', '', '[1, 2]', '{a: 1}', '!!str 5', '2001-01-01', '-0', '"a: b"'];
  const scalar = (): string => scalars[Math.floor(next() * scalars.length)]!;
  const lines: string[] = [];
  const map = next() < 0.6;
  for (let i = 0, n = 1 + Math.floor(next() * 5); i < n; i++) {
    const nested = depth < 4 && next() < 0.5;
    if (map) {
      // Now and then a key that repeats another of its mapping.
      const key = next() < 0.03 ? 'a' : `${['a', 'b', '1', '__proto__', "'z'"][Math.floor(next() * 5)]}${i}`;
      lines.push(nested ? `${pad}${key}:\n${yamlText(next, depth + 1, indent + 2)}` : `${pad}${key}: ${scalar()}${next() < 0.1 ? ' # c' : ''}`);
    } else lines.push(nested ? `${pad}-\n${yamlText(next, depth + 1, indent + 2)}` : `${pad}- ${scalar()}`);
  }
  return lines.join('\n');
}

describe('YAML data read a piece at a time', () => {
  it('gives parseYamlValue\'s value for clean documents and leaves the rest to it, cut at any size', { timeout: 120_000 }, () => {
    const next = random(7);
    let read = 0;
    for (let k = 0; k < 600; k++) {
      let text = `${yamlText(next, 0, 0)}\n`;
      if (next() < 0.1) text = `---\n${text}`;
      if (next() < 0.05) text = text.replace(':', '');
      if (next() < 0.05) text += 'zz: &a 1\nyy: *a\n';
      let want: { value: unknown } | undefined;
      try {
        want = { value: parseYamlValue(text) };
      } catch {
        want = undefined;
      }
      for (const batch of [1, 2, 5, 256]) {
        const got = runSteps(yamlValueSteps(text, batch));
        if (got === undefined) continue; // read whole by the caller
        if (!want || !sameValue(got, want.value)) expect({ text, batch, got }).toEqual({ text, batch, got: want?.value });
        read++;
      }
    }
    expect(read).toBeGreaterThan(300);
  });

  it('leaves a tag on a large value to the one-step read (it would tag the stand-in)', () => {
    // Found in review: `!!str` on a large mapping was read as the mapping, where the one-step
    // read refuses it (the tag does not fit a mapping); the tag had been moved onto the stand-in.
    const items = (pad: string): string => Array.from({ length: 10 }, (_, i) => `${pad}k${i}: ${i}`).join('\n');
    for (const text of [`a: !!str\n${items('  ')}\nb: 1\n`, `- !!str\n${items('  ')}\n- 1\n`, `a: !\n${items('  ')}\n`, `a: !!map\n${items('  ')}\n`]) {
      let want: { value: unknown } | undefined;
      try {
        want = { value: parseYamlValue(text) };
      } catch {
        want = undefined;
      }
      for (const batch of [1, 2, 5]) {
        const got = runSteps(yamlValueSteps(text, batch));
        if (got !== undefined) expect({ text, batch, got }).toEqual({ text, batch, got: want?.value });
      }
    }
    expect(() => parseYamlValue(`a: !!str\n${items('  ')}\n`)).toThrow('does not fit its value');
  });

  it('reads a large mapping in batches (not whole), nested ones too', () => {
    const text = `users:\n${Array.from({ length: 3000 }, (_, i) => `  user-${i}:\n    team: t${i % 7}\n    tags:\n      - a${i}\n`).join('')}top: 1\n`;
    let steps = 0;
    const g = yamlValueSteps(text, 64);
    let r = g.next();
    for (; !r.done; r = g.next()) steps++;
    expect(sameValue(r.value, parseYamlValue(text))).toBe(true);
    // About 3000 items of 4 each, in batches of 64, besides the tokens' steps.
    expect(steps).toBeGreaterThan(150);
  });
});

/** Counts the event loop's turns while `work` runs. */
async function turnsDuring(work: Promise<unknown>): Promise<number> {
  let done = false;
  const finished = work.finally(() => (done = true));
  let turns = 0;
  while (!done) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!done) turns++;
  }
  await finished;
  return turns;
}

/** JSON of `n` small objects under one key, as generated tables are (5.5 MB at 120,000). */
const largeJson = (n: number): string => `{\n  "users": {\n${Array.from({ length: n }, (_, i) => `    "user-${i}": {"team": "t${i % 97}", "tier": ${i % 5}}`).join(',\n')}\n  }\n}\n`;
const largeYaml = (n: number): string => `users:\n${Array.from({ length: n }, (_, i) => `  user-${i}:\n    team: t${i % 97}\n    tier: ${i % 5}\n`).join('')}`;

describe('loading a large data file', () => {
  it('gives the event loop turns while the file is read, and reads the value the one-step read gives', { timeout: 120_000 }, async () => {
    for (const [name, text, entries] of [
      ['data.json', largeJson(60_000), 60_000],
      ['data.yaml', largeYaml(10_000), 10_000],
    ] as const) {
      // Slices of 0 ms: a turn after every step, whatever the machine's speed.
      const reading = runStepsYielding(dataTextSteps(name, text), undefined, 0);
      const turns = await turnsDuring(reading);
      const data = (await reading) as { users: Record<string, unknown> };
      expect(Object.keys(data.users)).toHaveLength(entries);
      expect(sameValue(data, name.endsWith('.json') ? JSON.parse(text) : parseYamlValue(text))).toBe(true);
      // Pieces of some 16 Ki characters (JSON), batches of 256 items (YAML), and its tokens.
      expect(turns, name).toBeGreaterThan(100);
    }
  });

  it('stops at its next turn once its signal is aborted, with the signal\'s reason (it read the whole file before)', { timeout: 120_000 }, async () => {
    for (const [name, text] of [
      ['data.json', largeJson(60_000)],
      ['data.yaml', largeYaml(10_000)],
    ] as const) {
      const dir = dirWith({ [name]: text });
      const giveUp = new AbortController();
      const loading = parseDataFile(join(dir, name), undefined, giveUp.signal);
      // Aborted once the read is under way: a few turns in (its file operations take some).
      let turns = 0;
      const abortLater = (): void => {
        if (++turns < 50) setImmediate(abortLater);
        else giveUp.abort(new Error('policies did not load within 1 ms (reload.timeout_ms)'));
      };
      setImmediate(abortLater);
      await expect(loading).rejects.toThrow('did not load within 1 ms');
    }
  });

  it('refuses a bad large file with the error and place of the one-step read', { timeout: 120_000 }, async () => {
    const json = largeJson(20_000);
    // A key repeated far into the file (past the first pieces), and a syntax error there.
    const dup = json.replace('"user-15000": {"team": "t62", "tier": 0}', '"user-15000": {"team": "t62", "team": 0}');
    const broken = json.replace('"user-15000": {', '"user-15000" {');
    const yaml = largeYaml(5000);
    const yamlDup = `${yaml}  user-4000:\n    team: x\n`;
    const yamlBroken = yaml.replace('  user-4000:\n', '  user-4000:\n  - x\n');
    const dir = dirWith({ 'dup.json': dup, 'broken.json': broken, 'dup.yaml': yamlDup, 'broken.yaml': yamlBroken });
    await expect(parseDataFile(join(dir, 'dup.json'))).rejects.toMatchObject({
      message: 'cannot parse data file: duplicate key: already set at line 15003, column 20 (keys must be unique)',
      location: { file: join(dir, 'dup.json'), row: 15003, col: 35 },
    });
    await expect(parseDataFile(join(dir, 'broken.json'))).rejects.toMatchObject({
      message: 'cannot parse data file: not valid JSON',
      location: { file: join(dir, 'broken.json'), row: 15003, col: 19 },
    });
    await expect(parseDataFile(join(dir, 'dup.yaml'))).rejects.toMatchObject({
      message: 'cannot parse data file: not valid YAML',
      location: { file: join(dir, 'dup.yaml'), row: 15002, col: 3 },
    });
    await expect(parseDataFile(join(dir, 'broken.yaml'))).rejects.toMatchObject({
      message: 'cannot parse data file: not valid YAML',
      location: { file: join(dir, 'broken.yaml'), row: 12003, col: 5 },
    });
  });
});
