/**
 * README documents the contracts of DESIGN.md ("The contracts"): the policy input, the decision,
 * the audit record and the error codes. Each table is read from README.md and compared with what
 * the code builds or reads, both ways, so neither can change without the other.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildAuditRecord } from '../src/audit/record.js';
import { ConfigSchema } from '../src/config/schema.js';
import { ERROR_CODES } from '../src/pipeline/errors.js';
import type { Principal } from '../src/pipeline/types.js';
import { buildPolicyInput } from '../src/policy/input.js';
import { AUDIT_KEYS, DECISION_KEYS, normalizeDecision, REDACTION_KEYS } from '../src/policy/decision.js';
import { createRedactor } from '../src/redact/index.js';
import { createMetrics } from '../src/telemetry/index.js';
import { formatLintResult, lintTemplates } from '../src/templates/lint.js';
import { TemplateSchema, VariableSchema } from '../src/templates/schema.js';
import { allowDecision, makeContext, makeTemplate } from './stage-context.js';

const README = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');

/** The section under `heading` (its exact line), up to the next heading of its level or above. */
function section(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  expect(start, `README has a "${heading}" section`).toBeGreaterThanOrEqual(0);
  const level = /^#+/.exec(heading)![0].length;
  const rest = README.slice(start + heading.length + 1);
  const next = new RegExp(`\\n#{1,${level}} `).exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

/** The first cells of the rows of the first table in `text` whose header starts with `header`. */
function tableRows(text: string, header: string): string[][] {
  const start = text.indexOf(`| ${header}`);
  expect(start, `a table headed "${header}"`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

/** The `name`s in a cell (`a`, `b` → [a, b]). */
const codeNames = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** Dotted paths of the leaves and objects of a plain value (arrays are leaves). */
function paths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => [prefix + k, ...paths(x, `${prefix}${k}.`)]);
}

describe('README, "The input", against buildPolicyInput', () => {
  it('documents every field the policy sees, and nothing it does not', () => {
    const principal: Principal = {
      kind: 'kubernetes', subject: 'system:serviceaccount:ns:sa', namespace: 'ns', service_account: 'sa', pod: 'p',
      spiffe_id: 'spiffe://example.org/ns/ns/sa/sa', issuer: 'https://k8s', audiences: ['warden'],
    };
    const template = makeTemplate({ messages: [{ role: 'user', content: 'x' }], approvals: [{ by: 'a', ticket: 'T-1' }], retire_after: '2099-01-01' });
    const ctx = makeContext({ template: { id: template.id, version: template.version }, max_tokens: 5 }, { principal, template, provider: 'echo' });
    const input = buildPolicyInput(ctx, { name: 'prod', cluster: 'c1', team: 'x' }, Date.now());
    // Every object and leaf of the input (labels are documented as `environment.*`).
    const built = paths(input)
      .map((p) => (p === 'environment.team' ? 'environment.*' : p))
      // An approval's members (`by`, `ticket`, `at`) are described in its row.
      .filter((p) => !p.startsWith('template.approval.'));
    const documented = tableRows(section('### The input'), 'Field').map((r) => codeNames(r[0]!)[0]!);
    // The objects themselves are documented by their fields (`principal` by `principal.kind`, ...).
    const leaves = built.filter((p) => !built.some((q) => q.startsWith(`${p}.`)) || p === 'template');
    expect([...new Set(documented)].sort()).toEqual([...new Set(leaves)].sort());
  });
});

describe('README, "The decision", against normalizeDecision', () => {
  const rows = tableRows(section('### The decision'), 'Field').map((r) => ({ field: codeNames(r[0]!)[0]!, type: r[1]! }));

  it('reads every documented field: a value of the wrong type denies, naming it', () => {
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const { field } of rows) {
      const [head, leaf] = field.split('.');
      // An object where each documented field wants a string, a list, a boolean or a number.
      const wrong = { not: 'this type' };
      const raw: Record<string, unknown> = { allow: true };
      if (leaf === undefined) raw[head!] = field === 'allow' ? 'true' : field === 'reasons' ? [1] : 'x';
      else raw[head!] = { [leaf]: leaf === 'modes' ? { EMAIL_ADDRESS: 'shred' } : wrong };
      expect(normalizeDecision(raw, 'id').reasons, field).toEqual([`policy decision field "${field}" is malformed`]);
    }
  });

  it('documents every field it reads (the lists it reports other keys against)', () => {
    const read = [
      ...[...DECISION_KEYS].filter((k) => k !== 'redaction' && k !== 'audit'),
      ...[...REDACTION_KEYS].map((k) => `redaction.${k}`),
      ...[...AUDIT_KEYS].map((k) => `audit.${k}`),
    ];
    expect(rows.map((r) => r.field).sort()).toEqual(read.sort());
  });
});

describe('README, "5. Audit", against the record the audit stage builds', () => {
  it('documents every member of a record, and nothing else', () => {
    const redactor = createRedactor({});
    const template = makeTemplate({ messages: [{ role: 'user', content: 'x' }] });
    const ctx = makeContext({}, { principal: { kind: 'dev', subject: 's', audiences: [] }, template, decision: allowDecision(), redaction: redactor.session(allowDecision().redaction, []) });
    const record = buildAuditRecord(ctx, { hmacKey: 'k'.repeat(32), environment: 'e', policyRevision: 'r', configuredModel: () => true });
    const rows = tableRows(section('### 5. Audit (`src/audit/`)'), 'Field');
    const documented = rows.flatMap((r) => codeNames(r[0]!));
    expect(documented.sort()).toEqual([...Object.keys(record), 'seq', 'prev_hash', 'hash'].sort());
    // The redaction member's own members are named in its row.
    const redactionRow = rows.find((r) => r[0] === '`redaction`')![1]!;
    for (const k of Object.keys(record.redaction!)) expect(redactionRow, k).toContain(`\`${k}\``);
  });
});

describe('README, "Errors" (Warden API), against ERROR_CODES', () => {
  it('lists every code with its HTTP status and gRPC code, and no other', () => {
    const rows = tableRows(section('### Errors'), 'Code');
    const documented = Object.fromEntries(rows.map((r) => [codeNames(r[0]!)[0]!, { http: Number(r[1]), grpc: r[2] }]));
    expect(documented).toEqual(Object.fromEntries(Object.entries(ERROR_CODES).map(([k, v]) => [k, { http: v.http, grpc: v.grpc }])));
  });
});

/** All the tables of `text` (a section), each as its rows' cells, header and rule left out. */
function allTables(text: string): string[][][] {
  const tables: string[][][] = [];
  let rows: string[][] | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      rows = undefined;
      continue;
    }
    if (rows === undefined) tables.push((rows = []));
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return tables.map((t) => t.slice(2));
}

type ZodNode = { _zod: { def: { type: string; [k: string]: unknown } } };

/**
 * Every key of the config schema as a dotted path (a map's own keys are `*`, a list's items
 * `[]`), with whether the schema gives it a default.
 */
function schemaKeys(node: ZodNode, prefix = '', out = new Map<string, boolean>()): Map<string, boolean> {
  const def = node._zod.def;
  switch (def.type) {
    case 'object':
      for (const [k, v] of Object.entries(def.shape as Record<string, ZodNode>)) {
        let inner = v;
        while (['optional', 'nullable'].includes(inner._zod.def.type)) inner = inner._zod.def.innerType as ZodNode;
        out.set(prefix + k, inner._zod.def.type === 'default' || inner._zod.def.type === 'prefault');
        schemaKeys(v, `${prefix}${k}.`, out);
      }
      break;
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
      schemaKeys(def.innerType as ZodNode, prefix, out);
      break;
    case 'pipe':
      schemaKeys(def.in as ZodNode, prefix, out);
      break;
    case 'record':
      schemaKeys(def.valueType as ZodNode, `${prefix}*.`, out);
      break;
    case 'array':
      schemaKeys(def.element as ZodNode, `${prefix}[].`, out);
      break;
    case 'union':
      for (const o of def.options as ZodNode[]) schemaKeys(o, prefix, out);
      break;
  }
  return out;
}

describe('README, "Keys" (Configuration), against the config schema', () => {
  const keysSection = section('### Keys');
  /** Each documented key as its full path, with its Default cell. */
  const documented = new Map<string, string>();
  for (const part of keysSection.split(/\n(?=#### `)/).slice(1)) {
    const top = /^#### `([a-z_]+)`/.exec(part)![1]!;
    allTables(part).forEach((rows, i) => {
      for (const row of rows) {
        for (const name of codeNames(row[0]!)) {
          // identity's second table holds the keys `kubernetes` and `spiffe` share.
          const prefixes = top === 'identity' && i === 1 ? ['identity.kubernetes.', 'identity.spiffe.'] : top === 'providers' ? ['providers.*.'] : [`${top}.`];
          for (const p of prefixes) documented.set(p + name, row[1]!);
        }
      }
    });
  }
  const schema = schemaKeys(ConfigSchema as unknown as ZodNode);

  it('documents every key the schema takes', () => {
    // A key is documented in its own row, or as part of a documented key's value (a profile's
    // `entities`, a custom entity's `pattern`, a sink's `file`, a bundle's `jwks_url`), or is an
    // object whose keys are documented (`policy.decision_cache`).
    const undocumented = [...schema.keys()].filter((k) => {
      if (documented.has(k)) return false;
      if ([...documented.keys()].some((d) => k.startsWith(`${d}.`))) return false;
      if ([...schema.keys()].some((c) => c.startsWith(`${k}.`) && !c.slice(k.length + 1).startsWith('*') && !c.slice(k.length + 1).startsWith('[]'))) return false;
      // The maps under `####` headings with their own paragraph: `providers`, `models`.
      return !keysSection.includes(`#### \`${k}\``);
    });
    expect(undocumented).toEqual([]);
  });

  it('documents no key the schema does not take', () => {
    expect([...documented.keys()].filter((k) => !schema.has(k))).toEqual([]);
  });

  it('gives each default as the schema has it', () => {
    /** A config that holds `path` (an openai provider, a kubernetes identity, a Kubernetes secret store, around it). */
    const around = (path: string, value: unknown): Record<string, unknown> => {
      const config: Record<string, unknown> = {};
      if (path.startsWith('providers.*.')) {
        config.providers = { p: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1' } };
        config.models = { m: 'p' };
      }
      if (path.startsWith('identity.kubernetes.')) config.identity = { kubernetes: { issuer: 'i', audiences: ['a'], jwks_url: 'https://127.0.0.1/jwks' } };
      if (path.startsWith('identity.spiffe.')) config.identity = { spiffe: { trust_domains: ['example.org'], audiences: ['a'], jwks_url: 'https://127.0.0.1/jwks' } };
      if (path.startsWith('secrets.vault.')) config.secrets = { vault: { address: 'https://127.0.0.1:8200', auth: { kubernetes: { role: 'r' } } } };
      if (path.startsWith('secrets.kubernetes.')) config.secrets = { kubernetes: {} };
      if (value === undefined) return config;
      let at = config;
      const parts = path.replace('.*.', '.p.').split('.');
      for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
      at[parts.at(-1)!] = value;
      return config;
    };
    const checked: string[] = [];
    const wrong: string[] = [];
    for (const [path, cell] of documented) {
      if (schema.get(path) !== true) continue;
      // The Default cell starts with the value, as YAML (`[stdout]`, `127.0.0.1:8700`, `5000`).
      const literal = /^`([^`]+)`/.exec(cell)?.[1];
      if (literal === undefined) continue;
      const given = ConfigSchema.safeParse(around(path, parseYaml(literal) as unknown));
      if (!given.success || !isDeepStrictEqual(given.data, ConfigSchema.parse(around(path, undefined)))) wrong.push(`${path}: \`${literal}\``);
      checked.push(path);
    }
    expect(wrong).toEqual([]);
    expect(checked.length).toBeGreaterThanOrEqual(40);
  });
});

describe('README, "Metrics", against the registry', () => {
  it('lists every metric Warden registers with its type and labels, and no other', async () => {
    const metrics = createMetrics({ collectDefault: false });
    const registered = (await metrics.registry.getMetricsAsJSON()).map((m) => {
      const labels = (metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: readonly string[] }).labelNames;
      return { name: m.name, type: String(m.type), labels: [...labels] };
    });
    const rows = tableRows(section('### Metrics'), 'Metric')
      .filter((r) => !r[0]!.includes('*'))
      .map((r) => ({ name: codeNames(r[0]!)[0]!, type: r[1]!, labels: codeNames(r[2]!) }));
    expect(rows.sort((a, b) => a.name.localeCompare(b.name))).toEqual(registered.sort((a, b) => a.name.localeCompare(b.name)));
  });

  it('names the prefixes of the process metrics', async () => {
    const metrics = createMetrics();
    const own = new Set((await createMetrics({ collectDefault: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    const processNames = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !own.has(n));
    expect(processNames.length).toBeGreaterThan(0);
    const row = tableRows(section('### Metrics'), 'Metric').find((r) => r[0]!.includes('*'))!;
    const prefixes = codeNames(row[0]!).map((p) => p.replace(/\*$/, ''));
    expect(processNames.filter((n) => !prefixes.some((p) => n.startsWith(p)))).toEqual([]);
  });
});

describe('README, "File format" (Templates), against the template schema', () => {
  const example = /```yaml\n([\s\S]*?)```/.exec(section('#### File format'))![1]!;

  it('shows every key a template and a variable take, and no other', () => {
    const doc = parseYaml(example) as Record<string, unknown> & { variables: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc).sort()).toEqual(Object.keys(TemplateSchema.shape).sort());
    const variableKeys = new Set(Object.values(doc.variables).flatMap((v) => Object.keys(v)));
    expect([...variableKeys].sort()).toEqual(Object.keys(VariableSchema.shape).sort());
  });

  it('is a template that loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'readme-template-'));
    try {
      writeFileSync(join(dir, 'ticket-summary.yaml'), example);
      const result = await lintTemplates([dir]);
      expect(formatLintResult(result)).toMatch(/^ok: 1 template/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
