/**
 * README documents the contracts of DESIGN.md ("The contracts"): the policy input, the decision,
 * the audit record and the error codes. Each table is read from README.md and compared with what
 * the code builds or reads, both ways, so neither can change without the other.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildAuditRecord } from '../src/audit/record.js';
import { ERROR_CODES } from '../src/pipeline/errors.js';
import type { Principal } from '../src/pipeline/types.js';
import { buildPolicyInput } from '../src/policy/input.js';
import { AUDIT_KEYS, DECISION_KEYS, normalizeDecision, REDACTION_KEYS } from '../src/policy/decision.js';
import { createRedactor } from '../src/redact/index.js';
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
