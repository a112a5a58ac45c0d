/**
 * What loading a large policy data file costs, phase by phase, and how long it holds the event
 * loop. Writes a policy set to a temp directory: one small `.rego` file and either a JSON data
 * file of `n` small objects (5.5 MB at 120,000, README's figure) or a YAML one (1.6 MB at 40,000
 * maps), then
 *   1. times each step of reading the data file alone (decode, parse, duplicate keys, depth);
 *   2. loads the whole set as a serving process's reload does (loadRegoPolicy), with a 1 ms
 *      timer running: the longest gap between its ticks is the longest the loop was held;
 *   3. as a control, runs plain 10 ms slices of busy work for a second under the same timer: the
 *      gaps the machine's own load (and the collector) make anyway.
 *
 *   npx tsx scripts/data-load-cost.ts [json|yaml] [n] [runs=3]
 *
 * Not a test: the figures depend on the machine. README (Status and limits) quotes them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDataFile } from '../src/policy/rego/data.js';
import { loadRegoPolicy } from '../src/policy/rego/index.js';
import { unmarshalJSON } from '../src/policy/rego/builtins/json.js';
import { firstDuplicateKey } from '../src/policy/rego/json-unique-keys.js';
import { decodeText } from '../src/pipeline/text-file.js';
import { tooDeepAt } from '../src/pipeline/json-depth.js';
import { yamlDepthProblem } from '../src/pipeline/yaml-depth.js';
import { parseYamlValue } from '../src/pipeline/yaml-tags.js';
import { runStepsYielding } from '../src/pipeline/time-slices.js';

const kind = process.argv[2] === 'yaml' ? 'yaml' : 'json';
const n = Number(process.argv[3] ?? (kind === 'json' ? 120_000 : 40_000));
const runs = Number(process.argv[4] ?? 3);

function jsonText(count: number): string {
  const rows = [];
  for (let i = 0; i < count; i++) rows.push(`    "user-${i}": {"team": "t${i % 97}", "tier": ${i % 5}}`);
  return `{\n  "users": {\n${rows.join(',\n')}\n  }\n}\n`;
}

function yamlText(count: number): string {
  const rows = ['users:'];
  for (let i = 0; i < count; i++) rows.push(`  user-${i}:\n    team: t${i % 97}\n    tier: ${i % 5}`);
  return `${rows.join('\n')}\n`;
}

function ms(t0: number): string {
  return (performance.now() - t0).toFixed(0).padStart(6);
}

/** How long `work` takes, and the longest gap between the ticks of a 1 ms timer meanwhile. */
async function stalls(work: () => Promise<unknown>): Promise<{ total: number; longest: number }> {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const t = performance.now();
  last = t;
  await work();
  const total = performance.now() - t;
  clearInterval(tick);
  return { total, longest: Math.max(longest, performance.now() - last) };
}

const dir = mkdtempSync(join(tmpdir(), 'warden-data-cost-'));
try {
  writeFileSync(join(dir, 'p.rego'), 'package warden\n\nimport rego.v1\n\ndecision := {"allow": data.users[input.user].tier > 1}\n');
  const file = join(dir, `data.${kind}`);
  writeFileSync(file, kind === 'json' ? jsonText(n) : yamlText(n));
  const bytes = new Uint8Array(readFileSync(file));
  console.log(`${kind}: ${n} entries, ${(bytes.length / 1e6).toFixed(2)} MB`);
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    const text = decodeText(bytes);
    const phases = [`decode ${ms(t)}`];
    if (kind === 'json') {
      t = performance.now();
      const value = unmarshalJSON(text);
      phases.push(`parse ${ms(t)}`);
      t = performance.now();
      firstDuplicateKey(text);
      phases.push(`dup-keys ${ms(t)}`);
      t = performance.now();
      tooDeepAt(value, 1000);
      phases.push(`depth ${ms(t)}`);
    } else {
      t = performance.now();
      yamlDepthProblem(text);
      phases.push(`depth-scan ${ms(t)}`);
      t = performance.now();
      parseYamlValue(text);
      phases.push(`parse+checks ${ms(t)}`);
    }
    t = performance.now();
    await parseDataFile(file);
    phases.push(`parseDataFile ${ms(t)}`);

    // The whole load as a reload runs it, with a timer measuring how long the loop was held.
    const load = await stalls(() => loadRegoPolicy([dir], { excludeTests: true }));
    console.log(`run ${r + 1}: ${phases.join(' | ')} ms; load ${load.total.toFixed(0)} ms, longest stall ${load.longest.toFixed(0)} ms`);
  }
  const control = await stalls(() =>
    runStepsYielding(
      (function* () {
        for (const end = performance.now() + 1000; performance.now() < end; ) yield;
      })(),
    ),
  );
  console.log(`control (1 s of 10 ms slices): longest stall ${control.longest.toFixed(0)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
