/**
 * A seeded, deterministic mutation fuzzer for Warden's ingress (HTTP `/v1/chat/completions`,
 * `/v1/messages`, `/v1/models`, gRPC `warden.v1.PromptGateway`, the admin listener), and the
 * oracle every answer is held to: a status and code README documents for that route, in the
 * route's error shape; never `internal` or another 5xx bug code; an answer within a deadline;
 * a streamed failure ending with the documented error event; and no canary value of the request
 * (PII, a secret, the caller's token) in an error, a log line or an audit record.
 *
 * Requests go out as raw bytes (node:net, node:http2) so that the fuzzer controls everything the
 * clients would normalise: duplicate keys, lone surrogate escapes, odd chunk boundaries, header
 * bytes, a gRPC frame's bytes. Used by test/e2e/ingress-fuzz.test.ts with a fixed seed and a few
 * hundred cases per route; the same code runs at volume from a scratch script.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import { encodePromptRequest, rpcStatus } from './grpc.js';

// ---------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: a small seeded generator, so a case is reproduced from its seed alone. */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Canaries: values of the request that must never reach an error, a log line or an audit record.

export const CANARY_EMAIL = 'quill.canary@example.org';
export const CANARY_SSN = '536-22-7731';
export const CANARY_KEY = 'sk-proj-CANARYk3y9Qx7Lm2Np9Rt4Vw8Yz3Ab';
/** An unreadable credential's text (sent in odd Authorization / x-api-key values). */
export const CANARY_TOKEN = 'CANARYTOKENx8v2Lq';
const PII_TEXT = `Write to ${CANARY_EMAIL} about SSN ${CANARY_SSN}, key ${CANARY_KEY}.`;

// ---------------------------------------------------------------------------------------------
// JSON with raw pieces: a value the fuzzer writes as written (`1e400`, `"\ud800"`, `NaN`), and
// an object that repeats a key.

export class Raw {
  constructor(readonly text: string) {}
}
/** An object written with `key` twice: its own member first, then `second`. */
export class Dup {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly key: string,
    readonly second: unknown,
  ) {}
}

export function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Dup) {
    const inner = toJson(v.obj);
    const extra = `${JSON.stringify(v.key)}:${toJson(v.second)}`;
    return inner === '{}' ? `{${extra}}` : `${inner.slice(0, -1)},${extra}}`;
  }
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  if (v === undefined) return 'null';
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------
// Value pools

const ODD_STRINGS: readonly unknown[] = [
  '',
  ' ',
  'x',
  PII_TEXT,
  CANARY_EMAIL,
  CANARY_KEY,
  '{{ticket_id}}',
  '\u0000',
  '\ufeffBOM',
  'rtl \u202e gnirts',
  'zw\u200bsp',
  'e\u0301\u0301\u0301',
  '😀'.repeat(3),
  'line\nbreak\r\n',
  '__proto__',
  'constructor',
  'function',
  'image_url',
  'tool_use',
  'text',
  'assistant',
  'user',
  'system',
  'tool',
  'gpt-4o-mini',
  'echo',
  'support/ticket-summary@2',
  'support/ticket-summary@0',
  'support/ticket-summary@1',
  'support/ticket-summary@1000000000',
  'ops/incident-brief',
  new Raw('"\\ud800"'),
  new Raw('"a\\udc00b"'),
  new Raw('"\\ud83d"'),
  new Raw('"\\u0000x"'),
  new Raw('"\\ufeff"'),
  new Raw(`"${CANARY_EMAIL.replace('@', '\\u0040')}"`),
];

const ODD_NUMBERS: readonly unknown[] = [
  0,
  -1,
  1,
  2,
  0.5,
  -0.5,
  128,
  129,
  4294967296,
  9007199254740991,
  1e308,
  -1e308,
  5e-324,
  new Raw('-0'),
  new Raw('1e400'),
  new Raw('-1e400'),
  new Raw('9007199254740993'),
  new Raw('12345678901234567890'),
  new Raw('1.00000000000000000001'),
  new Raw('1E2'),
  new Raw('0.1e-400'),
];

/** Not JSON at all: the parser must refuse them. */
const BAD_LITERALS: readonly unknown[] = [new Raw('NaN'), new Raw('Infinity'), new Raw('-Infinity'), new Raw('0x10'), new Raw('01'), new Raw('undefined'), new Raw("'x'"), new Raw('.5'), new Raw('+1')];

function oddValue(r: Rand, depth = 0): unknown {
  switch (r.int(depth > 1 ? 5 : 8)) {
    case 0:
      return r.pick(ODD_STRINGS);
    case 1:
      return r.pick(ODD_NUMBERS);
    case 2:
      return r.pick([null, true, false]);
    case 3:
      return r.chance(0.05) ? r.pick(BAD_LITERALS) : r.pick(ODD_STRINGS);
    case 4:
      return longString(r);
    case 5:
      return [];
    case 6:
      return {};
    default:
      return r.chance(0.5) ? [oddValue(r, depth + 1), oddValue(r, depth + 1)] : { a: oddValue(r, depth + 1), [r.pick(['type', 'text', 'role', 'x'])]: oddValue(r, depth + 1) };
  }
}

function longString(r: Rand): string {
  const n = r.pick([300, 4097, 8001, 30_000, 70_000]);
  return (r.pick(['a', 'é', '😀', ' ', `${CANARY_EMAIL} `]) as string).repeat(Math.ceil(n / 2)).slice(0, n);
}

function nest(r: Rand, v: unknown): unknown {
  const depth = r.pick([10, 31, 32, 33, 64, 65, 200, 2000]);
  let out = v;
  const asArray = r.chance(0.5);
  for (let i = 0; i < depth; i++) out = asArray ? [out] : { a: out };
  return out;
}

// ---------------------------------------------------------------------------------------------
// Structural mutation of a JSON tree

type Path = Array<string | number>;

function nodes(v: unknown, path: Path = [], out: Array<{ path: Path; value: unknown }> = []): Array<{ path: Path; value: unknown }> {
  out.push({ path, value: v });
  // Past 40 levels (a nested mutation's chain) the tree is not walked: one more level is no new case.
  if (path.length > 40) return out;
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...path, i], out));
  else if (v !== null && typeof v === 'object' && !(v instanceof Raw) && !(v instanceof Dup)) for (const [k, x] of Object.entries(v)) nodes(x, [...path, k], out);
  return out;
}

function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1)) as any;
  parent[path[path.length - 1]!] = value;
  return root;
}

function getAt(root: unknown, path: Path): unknown {
  let v: any = root;
  for (const k of path) v = v[k];
  return v;
}

/** Members a fuzzed object may gain: the canary (never to be repeated), proto keys, near-misses. */
const MEMBER_NAMES = ['zzfuzz', CANARY_EMAIL, '__proto__', 'constructor', 'type', 'role', 'content', 'text', 'name', 'cache_control', 'is_error', 'citations', 'refusal', 'tool_calls', 'variabels', 'a'.repeat(65), '', 'é', '\u0000'];

export interface Mutated {
  body: unknown;
  notes: string[];
  /** The one mutation, when the case has one that must be refused: an unknown member added where README says no other member is carried. */
  strictAddition?: string;
}

/** One to `max` structural mutations of a deep copy of `seed`. `strict(path)` says where an unknown member must be refused. */
export function mutateJson(r: Rand, seed: unknown, strict: (path: string) => boolean, max = 3): Mutated {
  const kind = r.int(10);
  if (kind < 4) return gentle(r, seed);
  if (kind === 4) {
    const probe = strictProbe(r, seed, strict);
    if (probe) return probe;
  }
  let body: unknown = structuredClone(seed);
  const notes: string[] = [];
  const count = 1 + r.int(max);
  let strictAddition: string | undefined;
  for (let m = 0; m < count; m++) {
    const all = nodes(body);
    const { path, value } = r.pick(all);
    const where = path.join('.') || '$';
    const op = r.int(10);
    if (op <= 2) {
      body = setAt(body, path, oddValue(r));
      notes.push(`set ${where}`);
    } else if (op === 3 && path.length > 0) {
      const parent = getAt(body, path.slice(0, -1));
      const key = path[path.length - 1]!;
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as any)[key];
      notes.push(`drop ${where}`);
    } else if (op === 4 && isObj(value)) {
      const name = r.chance(0.3) ? 'zzfuzz' : r.pick(MEMBER_NAMES);
      (value as any)[name] = oddValue(r);
      notes.push(`add ${where}.${name.slice(0, 20)}`);
      if (count === 1 && name === 'zzfuzz' && strict(path.join('.'))) strictAddition = path.length ? `${path.join('.')}.zzfuzz` : 'zzfuzz';
    } else if (op === 5 && isObj(value) && Object.keys(value as object).length > 0) {
      const key = r.pick(Object.keys(value as object));
      body = setAt(body, path, new Dup({ ...(value as object) } as Record<string, unknown>, key, r.chance(0.5) ? oddValue(r) : (value as any)[key]));
      notes.push(`dup ${where}.${key}`);
    } else if (op === 6 && !notes.some((n) => n.startsWith('nest'))) {
      body = setAt(body, path, nest(r, value));
      notes.push(`nest ${where}`);
    } else if (op === 7 && Array.isArray(value)) {
      const n = r.pick([0, 2, 50, 1000]);
      const copy = value.length > 0 ? Array.from({ length: n }, (_, i) => structuredClone(value[i % value.length])) : Array.from({ length: n }, () => oddValue(r));
      body = setAt(body, path, copy);
      notes.push(`len ${where}=${n}`);
    } else if (op === 8 && typeof value === 'number') {
      body = setAt(body, path, r.chance(0.2) ? r.pick(BAD_LITERALS) : r.pick(ODD_NUMBERS));
      notes.push(`num ${where}`);
    } else if (op === 8 && typeof value === 'string') {
      body = setAt(body, path, r.pick([...ODD_STRINGS, longString(r)]));
      notes.push(`str ${where}`);
    } else {
      body = setAt(body, path, r.pick([null, [], {}, 0, '', true, [value], { value }]));
      notes.push(`retype ${where}`);
    }
  }
  return strictAddition === undefined ? { body, notes } : { body, notes, strictAddition };
}

/**
 * In-type changes only (a string for a string, a number for a number): the request stays valid
 * in shape, so its odd text (escapes, BOM, RTL marks, long runs, canaries) goes all the way
 * through redaction, the upstream and the answer.
 */
function gentle(r: Rand, seed: unknown): Mutated {
  const body: unknown = structuredClone(seed);
  const notes: string[] = ['gentle'];
  const leaves = nodes(body).filter((n) => n.path.length > 0 && (typeof n.value === 'string' || typeof n.value === 'number'));
  for (let m = 0; m < 1 + r.int(3); m++) {
    const { path, value } = r.pick(leaves);
    const v = typeof value === 'number' ? r.pick(ODD_NUMBERS) : r.chance(0.2) ? longString(r) : r.chance(0.5) ? r.pick(ODD_STRINGS) : `${String(value)}${r.pick(ODD_STRINGS.filter((x) => typeof x === 'string'))}`;
    setAt(body, path, v);
    notes.push(`~${path.join('.')}`);
  }
  return { body, notes };
}

/** One unknown member (`zzfuzz`) added where README says no other member is carried: it must be refused there. */
function strictProbe(r: Rand, seed: unknown, strict: (path: string) => boolean): Mutated | undefined {
  const body: unknown = structuredClone(seed);
  const places = nodes(body).filter((n) => isObj(n.value) && strict(n.path.join('.')));
  if (places.length === 0) return undefined;
  const { path, value } = r.pick(places);
  (value as Record<string, unknown>)['zzfuzz'] = r.pick([1, 'x', null, true, {}, []]);
  const at = path.length ? `${path.join('.')}.zzfuzz` : 'zzfuzz';
  return { body, notes: [`probe ${at}`], strictAddition: at };
}

function isObj(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw) && !(v instanceof Dup);
}

// ---------------------------------------------------------------------------------------------
// Seeds

const TICKET_VARS = { ticket_id: 'T-1234', customer_message: PII_TEXT };
const IMAGE = 'https://images.example.com/cat.png';
const TOOL_SCHEMA = { type: 'object', properties: { city: { type: 'string', description: 'a city' } }, required: ['city'] };

export const CHAT_SEEDS: ReadonlyArray<{ name: string; raw: boolean; body: Record<string, unknown>; headers?: Array<[string, string]> }> = [
  { name: 'governed', raw: false, body: { model: 'gpt-4o-mini', warden: { template: 'support/ticket-summary@2', variables: TICKET_VARS } } },
  { name: 'governed-stream', raw: false, body: { model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, max_tokens: 100, warden: { template: 'support/ticket-summary', variables: TICKET_VARS } } },
  {
    name: 'governed-header',
    raw: false,
    body: { model: 'echo', messages: [] },
    headers: [
      ['x-warden-template', 'support/ticket-summary@2'],
      ['x-warden-variables', JSON.stringify(TICKET_VARS)],
    ],
  },
  {
    name: 'raw',
    raw: true,
    body: {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: PII_TEXT }, { type: 'image_url', image_url: { url: IMAGE, detail: 'low' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'Sunny, 21C' },
        { role: 'assistant', content: 'It is sunny.', refusal: null, annotations: [], audio: null, function_call: null },
        { role: 'user', content: PII_TEXT, name: 'alice' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: TOOL_SCHEMA, strict: false } }],
      tool_choice: 'auto',
      temperature: 0.7,
      top_p: 0.9,
      max_completion_tokens: 200,
      n: 1,
      seed: 42,
      stop: ['\n\n'],
      user: CANARY_EMAIL,
      metadata: { owner: PII_TEXT },
      logit_bias: { '50256': -100 },
      response_format: { type: 'text' },
    },
  },
  {
    name: 'raw-stream',
    raw: true,
    body: {
      model: 'echo',
      stream: true,
      messages: [
        { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: PII_TEXT },
      ],
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logprobs: false,
      modalities: ['text'],
    },
  },
];

export const MESSAGES_SEEDS: ReadonlyArray<{ name: string; raw: boolean; body: Record<string, unknown>; headers?: Array<[string, string]> }> = [
  { name: 'governed', raw: false, body: { model: 'gpt-4o-mini', max_tokens: 256, messages: [], warden: { template: 'support/ticket-summary@2', variables: TICKET_VARS } } },
  {
    name: 'governed-header-stream',
    raw: false,
    body: { model: 'echo', max_tokens: 256, stream: true, messages: [] },
    headers: [
      ['x-warden-template', 'support/ticket-summary@2'],
      ['x-warden-variables', JSON.stringify(TICKET_VARS)],
    ],
  },
  {
    name: 'raw',
    raw: true,
    body: {
      model: 'gpt-4o-mini',
      max_tokens: 256,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: PII_TEXT }, { type: 'image', source: { type: 'url', url: IMAGE } }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Let me look.', citations: null }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'Sunny' }], is_error: false }, { type: 'text', text: PII_TEXT }] },
      ],
      tools: [{ name: 'get_weather', description: 'Weather for a city', input_schema: TOOL_SCHEMA }],
      tool_choice: { type: 'auto', disable_parallel_tool_use: true },
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      stop_sequences: ['END'],
      metadata: { user_id: 'u-1' },
    },
  },
  { name: 'raw-stream', raw: true, body: { model: 'echo', max_tokens: 64, stream: true, system: 'Be brief.', messages: [{ role: 'user', content: PII_TEXT }] } },
];

export const GRPC_SEEDS: ReadonlyArray<{ name: string; raw: boolean; body: Record<string, unknown> }> = [
  { name: 'governed', raw: false, body: { model: 'gpt-4o-mini', template: { id: 'support/ticket-summary', version: 2 }, variables: TICKET_VARS, max_tokens: 100 } },
  {
    name: 'raw',
    raw: true,
    body: {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', parts: [{ type: 'text', text: PII_TEXT }, { type: 'image_url', json: JSON.stringify({ type: 'image_url', image_url: { url: IMAGE } }) }] },
        { role: 'assistant', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'Sunny' },
        { role: 'assistant', refusal: 'I cannot.' },
        { role: 'user', content: PII_TEXT, name: 'alice' },
      ],
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['END'],
      params_json: JSON.stringify({ tool_choice: 'auto', seed: 7, user: CANARY_EMAIL }),
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters_json: JSON.stringify(TOOL_SCHEMA) } }],
    },
  },
];

// Where README says no other member is carried (an added unknown member must be refused).
const CHAT_STRICT = [/^warden$/, /^messages\.\d+$/, /^messages\.\d+\.tool_calls\.\d+$/, /^messages\.\d+\.tool_calls\.\d+\.function$/, /^tools\.\d+$/, /^tools\.\d+\.function$/, /^messages\.\d+\.content\.\d+$/, /^messages\.\d+\.content\.\d+\.image_url$/];
const MESSAGES_STRICT = [/^$/, /^warden$/, /^messages\.\d+$/, /^messages\.\d+\.content\.\d+$/, /^messages\.\d+\.content\.\d+\.source$/, /^system\.\d+$/, /^tools\.\d+$/, /^tool_choice$/, /^metadata$/];

export const chatStrict = (p: string) => CHAT_STRICT.some((re) => re.test(p));
export const messagesStrict = (p: string) => MESSAGES_STRICT.some((re) => re.test(p));

// ---------------------------------------------------------------------------------------------
// The documented codes (README, Errors): HTTP status and gRPC status per Warden code.

export const CODES: Record<string, { http: number; grpc: number }> = {
  invalid_request: { http: 400, grpc: 3 },
  unauthenticated: { http: 401, grpc: 16 },
  policy_denied: { http: 403, grpc: 7 },
  model_not_allowed: { http: 403, grpc: 7 },
  not_found: { http: 404, grpc: 5 },
  template_not_found: { http: 404, grpc: 5 },
  template_retired: { http: 410, grpc: 9 },
  variable_missing: { http: 400, grpc: 3 },
  variable_invalid: { http: 400, grpc: 3 },
  payload_too_large: { http: 413, grpc: 8 },
  unsupported_media_type: { http: 415, grpc: 3 },
  secret_unavailable: { http: 503, grpc: 14 },
  redaction_blocked: { http: 422, grpc: 9 },
  redaction_failed: { http: 500, grpc: 13 },
  policy_error: { http: 500, grpc: 13 },
  template_invalid: { http: 500, grpc: 13 },
  upstream_error: { http: 502, grpc: 14 },
  upstream_rejected: { http: 400, grpc: 3 },
  upstream_rate_limited: { http: 429, grpc: 8 },
  upstream_timeout: { http: 504, grpc: 4 },
  audit_unavailable: { http: 503, grpc: 14 },
  overloaded: { http: 503, grpc: 14 },
  shutting_down: { http: 503, grpc: 14 },
  request_timeout: { http: 408, grpc: 4 },
  cancelled: { http: 499, grpc: 1 },
  internal: { http: 500, grpc: 13 },
};

/**
 * The codes bad input may get from a healthy Warden in front of a healthy upstream. The rest
 * (internal and the other 500s, an unavailable secret or audit log, a timeout) would be a bug
 * the input provoked. `upstream_error` is here because a request may ask for an answer the
 * loopback upstream does not give (`n: 2`, a stream it then ends after one choice).
 */
export const EXPECTED_CODES = new Set(['invalid_request', 'unauthenticated', 'policy_denied', 'model_not_allowed', 'not_found', 'template_not_found', 'template_retired', 'variable_missing', 'variable_invalid', 'payload_too_large', 'unsupported_media_type', 'redaction_blocked', 'upstream_error']);

/** Anthropic's error type for a status (README, /v1/messages). */
export function anthropicType(status: number): string {
  const named: Record<number, string> = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 504: 'timeout_error', 529: 'overloaded_error' };
  return named[status] ?? (status < 500 ? 'invalid_request_error' : 'api_error');
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1

export interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
}

export type HttpOutcome = { kind: 'response'; res: RawResponse } | { kind: 'timeout'; got: Buffer } | { kind: 'no-answer'; got: Buffer; error?: string };

export interface RawRequest {
  method: string;
  path: string;
  headers: Array<[string, string]>;
  body: Buffer;
  /** Send the body chunked, in pieces cut at these offsets. */
  chunkedAt?: number[];
}

export function requestBytes(req: RawRequest): Buffer[] {
  const head = [`${req.method} ${req.path} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close', ...req.headers.map(([k, v]) => `${k}: ${v}`)];
  if (req.chunkedAt === undefined) {
    if (req.method !== 'GET' || req.body.length > 0) head.push(`content-length: ${req.body.length}`);
    return [Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), req.body])];
  }
  head.push('transfer-encoding: chunked');
  const pieces: Buffer[] = [Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1')];
  let at = 0;
  for (const cut of [...req.chunkedAt.filter((c) => c > 0 && c < req.body.length).sort((a, b) => a - b), req.body.length]) {
    if (cut <= at) continue;
    const part = req.body.subarray(at, cut);
    pieces.push(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
    at = cut;
  }
  pieces.push(Buffer.from('0\r\n\r\n'));
  return pieces;
}

/** Sends `pieces` on a fresh connection (one write each, a tick apart) and reads until it closes. */
export function rawHttp(port: number, pieces: Buffer[], deadlineMs: number): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    let error: string | undefined;
    const socket = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ kind: 'timeout', got: Buffer.concat(got) });
    }, deadlineMs);
    socket.on('data', (d: Buffer) => got.push(d));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(got);
      const res = parseResponse(all);
      resolve(res ? { kind: 'response', res } : error === undefined ? { kind: 'no-answer', got: all } : { kind: 'no-answer', got: all, error });
    });
    // Written 16 KiB at a time, and no more once an answer began, as an HTTP client does: a
    // refusal of a large body (413) closes the connection, and a write into it then (EPIPE) would
    // destroy the socket with the answer unread.
    socket.on('connect', async () => {
      for (const p of pieces) {
        for (let at = 0; at < p.length; at += 16_384) {
          if (socket.destroyed || got.length > 0) return;
          if (!socket.write(p.subarray(at, at + 16_384))) await new Promise((r) => socket.once('drain', r));
          await new Promise((r) => setImmediate(r));
        }
      }
    });
  });
}

function parseResponse(all: Buffer): RawResponse | undefined {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = all.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
  let body = all.subarray(end + 4);
  if (headers.some(([k, v]) => k === 'transfer-encoding' && v === 'chunked')) {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = body.indexOf('\r\n', at);
      if (nl < 0) break;
      const size = parseInt(body.subarray(at, nl).toString('latin1'), 16);
      if (!(size > 0)) break;
      out.push(body.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
    body = Buffer.concat(out);
  }
  return { status: Number(m[1]), headers, body };
}

export function header(res: RawResponse, name: string): string | undefined {
  return res.headers.find(([k]) => k === name)?.[1];
}

// ---------------------------------------------------------------------------------------------
// Oracles

export type Route = 'chat' | 'messages' | 'models' | 'admin';

/** The route an app-listener path is served by (the query is not part of it): its answers' shape. */
export function routeOf(target: string): Route {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (path === '/v1/messages') return 'messages';
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return 'models';
  return 'chat';
}

/** What is wrong with an HTTP answer on `route` (empty: nothing). */
export function checkHttp(route: Route, method: string, res: RawResponse, also?: string): string[] {
  const bad: string[] = [];
  const text = res.body.toString('utf8');
  const type = header(res, 'content-type') ?? '';
  if (route === 'admin') {
    if (![200, 404, 405, 503].includes(res.status)) bad.push(`admin status ${res.status}`);
    if (res.status === 405 && header(res, 'allow') !== 'GET, HEAD') bad.push('405 without allow: GET, HEAD');
    return bad;
  }
  if (res.status === 200) {
    if (type.startsWith('text/event-stream')) bad.push(...(route === 'messages' ? checkAnthropicStream(text, also) : checkChatStream(text, also)));
    else {
      const json = parse(text);
      if (json === undefined) return [`200 body is not JSON: ${text.slice(0, 80)}`];
      const want = route === 'chat' ? 'chat.completion' : route === 'messages' ? 'message' : undefined;
      if (route === 'messages' && json.type !== 'message') bad.push(`200 type ${String(json.type)}`);
      if (route === 'chat' && json.object !== want) bad.push(`200 object ${String(json.object)}`);
      if (route === 'models' && json.object !== 'list' && json.object !== 'model') bad.push(`200 object ${String(json.object)}`);
    }
    return bad;
  }
  if (method === 'HEAD') return bad;
  if (!type.startsWith('application/json')) bad.push(`error content-type ${type}`);
  const json = parse(text);
  if (json === undefined) return [...bad, `${res.status} body is not JSON: ${text.slice(0, 120)}`];
  const err = route === 'messages' ? json.error : json.error;
  if (route === 'messages') {
    if (json.type !== 'error') bad.push('anthropic error without type: error');
    if (typeof json.request_id !== 'string') bad.push('anthropic error without request_id');
    if (err?.type !== anthropicType(res.status)) bad.push(`anthropic error type ${String(err?.type)} for ${res.status}`);
  } else if (typeof err?.type !== 'string') bad.push('error without type');
  if (typeof err?.message !== 'string' || err.message === '') bad.push('error without message');
  // OpenAI's shape always has `param` (null when no field is named); Anthropic's has it only when one is.
  if (route === 'messages' ? err && 'param' in err && typeof err.param !== 'string' : !(err && 'param' in err) || (err.param !== null && typeof err.param !== 'string')) bad.push('error param');
  bad.push(...checkCode(err?.code, res.status, route, also));
  if (res.status === 405 && !header(res, 'allow')) bad.push('405 without allow');
  if (!header(res, 'x-request-id')) bad.push('no x-request-id');
  return bad;
}

function checkCode(code: unknown, status: number, route: Route, also?: string): string[] {
  if (typeof code !== 'string' || !(code in CODES)) return [`undocumented code ${String(code)}`];
  const bad: string[] = [];
  if (!EXPECTED_CODES.has(code) && code !== also) bad.push(`code ${code}`);
  const want = route === 'messages' && code === 'overloaded' ? 529 : CODES[code]!.http;
  const ok = status === want || (code === 'invalid_request' && status === 405) || (code === 'unsupported_media_type' && status === 415);
  if (!ok) bad.push(`status ${status} for code ${code}`);
  return bad;
}

function parse(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function checkChatStream(text: string, also?: string): string[] {
  const events = text.split('\n\n').filter((b) => b.trim() !== '');
  if (events.length === 0) return ['empty stream'];
  const last = events[events.length - 1]!;
  if (last === 'data: [DONE]') return events.slice(0, -1).every((e) => parse(e.replace(/^data: /, ''))?.object === 'chat.completion.chunk') ? [] : ['stream event not a chunk'];
  const err = parse(last.replace(/^data: /, ''))?.error;
  if (!err) return [`stream ends without [DONE] or error: ${last.slice(0, 80)}`];
  return checkCode(err.code, CODES[err.code]?.http ?? -1, 'chat', also).map((s) => `stream error event: ${s}`);
}

function checkAnthropicStream(text: string, also?: string): string[] {
  const events = text
    .split('\n\n')
    .filter((b) => b.trim() !== '')
    .map((b) => ({ event: /^event: (.+)$/m.exec(b)?.[1] ?? '', data: parse(/^data: (.+)$/m.exec(b)?.[1] ?? 'null') }));
  if (events.length === 0) return ['empty stream'];
  const last = events[events.length - 1]!;
  if (events[0]!.event !== 'message_start' && events[0]!.event !== 'error') return [`stream starts with ${events[0]!.event}`];
  if (last.event === 'message_stop') return [];
  if (last.event !== 'error') return [`stream ends with ${last.event}`];
  const code = last.data?.error?.code;
  return checkCode(code, CODES[code]?.http ?? -1, 'messages', also).map((s) => `stream error event: ${s}`);
}

/** Canaries found in `text` (their names). */
export function canariesIn(text: string, extra: readonly string[] = []): string[] {
  return [CANARY_EMAIL, CANARY_SSN, CANARY_KEY, CANARY_TOKEN, ...extra].filter((c) => text.includes(c));
}

// ---------------------------------------------------------------------------------------------
// gRPC over raw HTTP/2

export interface GrpcOutcome {
  kind: 'status' | 'timeout' | 'error';
  status?: number;
  headers: Record<string, unknown>;
  trailers: Record<string, unknown>;
  messages: Buffer[];
  error?: string;
}

export function grpcFrame(message: Buffer, opts: { compressed?: boolean; declared?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head[0] = opts.compressed ? 1 : 0;
  head.writeUInt32BE(opts.declared ?? message.length, 1);
  return Buffer.concat([head, message]);
}

export function grpcCall(session: ClientHttp2Session, method: string, token: string, body: Buffer, deadlineMs: number, extraHeaders: Record<string, string> = {}): Promise<GrpcOutcome> {
  return new Promise((resolve) => {
    const out: GrpcOutcome = { kind: 'status', headers: {}, trailers: {}, messages: [] };
    const req = session.request({ ':method': 'POST', ':path': `/warden.v1.PromptGateway/${method}`, 'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${token}`, ...extraHeaders });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      req.close();
      resolve({ ...out, kind: 'timeout' });
    }, deadlineMs);
    req.on('response', (h) => (out.headers = { ...h }));
    req.on('trailers', (t) => (out.trailers = { ...t }));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e) => (out.error = e.message));
    req.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      for (let at = 0; at + 5 <= all.length; ) {
        const n = all.readUInt32BE(at + 1);
        out.messages.push(all.subarray(at + 5, at + 5 + n));
        at += 5 + n;
      }
      const st = out.trailers['grpc-status'] ?? out.headers['grpc-status'];
      if (st === undefined) resolve({ ...out, kind: 'error' });
      else resolve({ ...out, status: Number(st) });
    });
    req.end(body);
  });
}

/** What is wrong with a gRPC call's end. */
export function checkGrpc(o: GrpcOutcome, also?: string): string[] {
  if (o.kind === 'timeout') return ['no status within the deadline'];
  if (o.kind === 'error' || o.status === undefined) return [`no grpc-status (${o.error ?? 'stream closed'})`];
  if (o.status === 0) return [];
  const meta = { ...o.headers, ...o.trailers };
  const code = meta['warden-code'];
  const bad: string[] = [];
  // Every end carries a warden-code: the fuzz sends no message past grpc-js's receive ceiling, and
  // a compressed message (which grpc-js used to answer itself) is refused by Warden from its
  // headers (README, Logs and audit).
  if (typeof code !== 'string' || !(code in CODES)) return [`status ${o.status} with warden-code ${String(code)}: ${decodeURIComponent(String(meta['grpc-message'] ?? ''))}`];
  if (!EXPECTED_CODES.has(code) && code !== also) bad.push(`code ${code}: ${decodeURIComponent(String(meta['grpc-message'] ?? ''))}`);
  // README (Errors): over gRPC a compressed request message is refused from its headers with
  // UNIMPLEMENTED, as gRPC specifies for a compression the server does not take.
  const want = code === 'not_found' ? [5, 12] : code === 'unsupported_media_type' ? [12] : [CODES[code]!.grpc];
  if (!want.includes(o.status)) bad.push(`grpc status ${o.status} for ${code}`);
  const bin = meta['grpc-status-details-bin'];
  if (typeof bin !== 'string') bad.push('no grpc-status-details-bin');
  else {
    const md = new (class {
      get(k: string) {
        return k === 'grpc-status-details-bin' ? [Buffer.from(bin, 'base64')] : [];
      }
    })();
    const st = rpcStatus({ metadata: md as never });
    if (st?.errorInfo?.reason !== code || st.code !== o.status) bad.push(`status details say ${st?.errorInfo?.reason}/${st?.code}`);
  }
  return bad;
}

export function encodeRequest(body: unknown): Buffer | undefined {
  try {
    return encodePromptRequest(body as object);
  } catch {
    return undefined;
  }
}

/** Byte-level damage to a valid encoding: truncation, flips, insertions, garbage. */
export function damageBytes(r: Rand, b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (r.int(6)) {
    case 0:
      return out.subarray(0, r.int(out.length));
    case 1: {
      for (let i = 0; i < 1 + r.int(4); i++) out[r.int(out.length)] = r.int(256);
      return out;
    }
    case 2: {
      const at = r.int(out.length + 1);
      const junk = Buffer.from(Array.from({ length: 1 + r.int(12) }, () => r.pick([0x00, 0x08, 0x0a, 0x12, 0x1a, 0x7f, 0x80, 0xff, 0xfe, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, r.int(256)])));
      return Buffer.concat([out.subarray(0, at), junk, out.subarray(at)]);
    }
    case 3:
      return Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256)));
    case 4: {
      // a string field's bytes replaced by invalid UTF-8
      const at = out.indexOf(0x12);
      if (at >= 0 && at + 3 < out.length) out[at + 2] = r.pick([0xff, 0xc0, 0xed, 0x80]);
      return out;
    }
    default:
      return Buffer.concat([out, Buffer.from([r.pick([0x18, 0x28, 0x50, 0x58]), ...Array.from({ length: r.int(11) }, () => 0xff), 0x01])]);
  }
}

// ---------------------------------------------------------------------------------------------
// Files: the audit log's new lines since `from`.

export function readFrom(file: string, from: number): { text: string; next: number } {
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    return { text: '', next: from };
  }
  if (size <= from) return { text: '', next: from };
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    return { text: buf.toString('utf8'), next: size };
  } finally {
    closeSync(fd);
  }
}

export function http2Session(address: string): ClientHttp2Session {
  return h2connect(`http://${address}`);
}

// ---------------------------------------------------------------------------------------------
// Cases and the run

export interface FuzzTarget {
  http: string;
  grpc: string;
  admin: string;
  logs: string[];
  auditFile: string;
  /** labs/raw-bot (raw prompts allowed) and support/ticket-bot (the template's caller). */
  rawToken: string;
  governedToken: string;
  /** Switches the loopback upstream's answer (helpers/upstream.ts modes) for the next case. */
  setUpstreamMode?: (mode: UpstreamAnswer) => void;
}

/**
 * The upstream answers a case may meet: mostly a plain answer, sometimes a refusal, tool calls,
 * an error or garbage, so that a fuzzed request also meets each way an answer can fail (a stream
 * that fails must end with the documented error event).
 */
export const UPSTREAM_ANSWERS = ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'garbage', 'refusal', 'tool-call', 'text-then-tools', 'after-finish', 'error500', 'bad-request', 'rate-limited', 'deep-part'] as const;
export type UpstreamAnswer = (typeof UPSTREAM_ANSWERS)[number];

/** The codes an upstream's own failure adds to EXPECTED_CODES. */
const UPSTREAM_CODES: Partial<Record<UpstreamAnswer, string>> = { 'bad-request': 'upstream_rejected', 'rate-limited': 'upstream_rate_limited' };

export interface FuzzFailure {
  route: Route | 'grpc';
  caseSeed: number;
  problems: string[];
  notes: string[];
  request: string;
}

export interface FuzzCounts {
  chat: number;
  messages: number;
  models: number;
  admin: number;
  grpc: number;
}

export interface FuzzReport {
  cases: FuzzCounts;
  statuses: Record<string, number>;
  failures: FuzzFailure[];
  /** Cases with one strict-member addition, each of which had to be refused. */
  strictChecked: number;
}

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json, text/plain', 'APPLICATION/JSON'];
const AUTH_VALUES = ['', 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', `Bearer ${CANARY_TOKEN} x`, `Bearer ${CANARY_TOKEN}`, `bearer ${CANARY_TOKEN}`, `Bearer\t${CANARY_TOKEN}`, `Bearer ${CANARY_TOKEN}\u00e9`, `Token ${CANARY_TOKEN}`];
const TEMPLATE_HEADERS = ['', ' ', 'support/ticket-summary@', 'support/ticket-summary@0', 'support/ticket-summary@-1', 'support/ticket-summary@1.5', 'support/ticket-summary@99999999999', 'Support/Ticket-Summary@2', '../../etc/passwd', 'support/ticket-summary@2@2', CANARY_EMAIL, 'support/ticket-summary\u00e9@2', 'support/ticket-summary@2, ops/incident-brief@1', 'ops/incident-brief@1', 'x'.repeat(300)];
const VARIABLE_HEADERS = ['', '{', '[]', 'null', '"x"', '{"ticket_id":1}', `{"customer_message":"${CANARY_EMAIL}"}`, '{"ticket_id":"T","customer_message":"m","extra":"e"}', '{"__proto__":{"x":1}}', '{"ticket_id":"T","ticket_id":"U","customer_message":"m"}', '{"ticket_id":"\\ud800","customer_message":"m"}', `{"${CANARY_EMAIL}":"x"}`, '{"ticket_id":"T\u00e9","customer_message":"m"}'];
const ODD_PATHS = ['/v1/chat/completions/', '/v1/chat/completions?x=1', '//v1/chat/completions', '/v1/chat/completions#f', '/V1/chat/completions', '/v1/messages/', '/v1/messages?beta=true', '/v1/chat/completions/../messages', '/v1/%63hat/completions', '/v1/models/..', '*', '/', '/v1', `/v1/${CANARY_EMAIL}`];
const ODD_METHODS = ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'post', 'TRACE'];

function textDamage(r: Rand, b: Buffer): { body: Buffer; note: string } {
  switch (r.int(8)) {
    case 0:
      return { body: b.subarray(0, r.int(b.length)), note: 'truncate' };
    case 1: {
      const at = r.int(b.length + 1);
      return { body: Buffer.concat([b.subarray(0, at), Buffer.from([r.pick([0xff, 0xc3, 0xed, 0x80, 0x00, 0x22, 0x5c, 0x7b, 0x2c])]), b.subarray(at)]), note: `inject@${at}` };
    }
    case 2:
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]), note: 'bom' };
    case 3:
      return { body: Buffer.concat([b, Buffer.from(r.pick([' x', '}', ',', '\u0000', '{}', '\n\n{"a":1}']))]), note: 'trailing' };
    case 4:
      return { body: Buffer.alloc(0), note: 'empty' };
    case 5:
      return { body: Buffer.from(b.toString('utf8'), 'utf16le'), note: 'utf16' };
    case 6:
      return { body: Buffer.from(r.pick(['[]', 'null', '"x"', '1', 'true', '[{}]', '{"model":"echo"}'])), note: 'other-json' };
    default:
      return { body: Buffer.from(b.toString('latin1').replace(/[ée]/, '\u00e9'), 'latin1'), note: 'latin1' };
  }
}

interface HttpCase {
  route: Route;
  req: RawRequest;
  notes: string[];
  strictAddition?: string;
}

function postCase(r: Rand, route: 'chat' | 'messages', t: FuzzTarget): HttpCase {
  const seeds = route === 'chat' ? CHAT_SEEDS : MESSAGES_SEEDS;
  const seed = r.pick(seeds);
  const notes = [seed.name];
  let body: unknown = seed.body;
  let strictAddition: string | undefined;
  if (r.chance(0.8)) {
    const m = mutateJson(r, seed.body, route === 'chat' ? chatStrict : messagesStrict);
    body = m.body;
    notes.push(...m.notes);
    strictAddition = m.strictAddition;
  }
  let bytes: Buffer = Buffer.from(toJson(body), 'utf8');
  const token = seed.raw ? t.rawToken : t.governedToken;
  const headers: Array<[string, string]> = [['content-type', 'application/json'], ...(seed.headers ?? [])];
  let auth: Array<[string, string]> = route === 'messages' && r.chance(0.3) ? [['x-api-key', token]] : [['authorization', `Bearer ${token}`]];
  let method = 'POST';
  let path = route === 'chat' ? '/v1/chat/completions' : '/v1/messages';
  let chunkedAt: number[] | undefined;
  let transport = false;
  if (r.chance(0.1)) {
    const d = textDamage(r, bytes);
    bytes = d.body;
    notes.push(d.note);
    transport = true;
  }
  if (r.chance(0.08)) {
    headers[0] = ['content-type', r.pick(CONTENT_TYPES)];
    notes.push(`ct ${headers[0][1]}`);
  }
  if (r.chance(0.03)) {
    headers.push(['content-encoding', r.pick(['gzip', 'br', 'identity', 'GZIP', 'deflate, identity', ''])]);
    notes.push('ce');
    transport = true;
  }
  if (r.chance(0.25)) {
    chunkedAt = Array.from({ length: 1 + r.int(6) }, () => r.int(bytes.length));
    notes.push('chunked');
  }
  if (r.chance(0.08)) {
    const v = r.pick(AUTH_VALUES);
    auth = r.chance(0.3) ? [['authorization', `Bearer ${token}`], ['authorization', v]] : r.chance(0.5) ? [['authorization', v]] : [];
    if (route === 'messages' && r.chance(0.4)) auth.push(['x-api-key', r.pick(['', `${CANARY_TOKEN} x`, CANARY_TOKEN, token])]);
    notes.push('auth');
    transport = true;
  }
  if (r.chance(0.06)) {
    headers.push(['x-warden-template', r.pick(TEMPLATE_HEADERS)]);
    notes.push('x-warden-template');
  }
  if (r.chance(0.05)) {
    headers.push(['x-warden-variables', r.pick(VARIABLE_HEADERS)]);
    notes.push('x-warden-variables');
  }
  if (r.chance(0.02)) {
    method = r.pick(ODD_METHODS);
    notes.push(`method ${method}`);
    transport = true;
  }
  if (r.chance(0.02)) {
    path = r.pick(ODD_PATHS);
    notes.push(`path ${path}`);
    transport = true;
  }
  const c: HttpCase = { route, req: { method, path, headers: [...headers, ...auth], body: bytes, ...(chunkedAt ? { chunkedAt } : {}) }, notes };
  if (strictAddition !== undefined && !transport && seed.headers === undefined && !notes.some((n) => n.startsWith('x-warden') || n.startsWith('ct '))) c.strictAddition = strictAddition;
  return c;
}

function modelsCase(r: Rand, t: FuzzTarget): HttpCase {
  const id = r.chance(0.2) ? '' : `/${encodeURIComponent(String(r.pick([...ODD_STRINGS.filter((s) => typeof s === 'string'), 'gpt-4o-mini', 'echo', 'down-model', 'x'.repeat(300)])))}`;
  const path = r.chance(0.1) ? r.pick(['/v1/models/', '/v1/models//echo', '/v1/models/echo/x', '/v1/models/%ZZ', '/v1/models/%00', '/v1/models/%ff', '/v1/models?x=1']) : `/v1/models${id}`;
  const method = r.chance(0.1) ? r.pick(ODD_METHODS) : 'GET';
  const auth: Array<[string, string]> = r.chance(0.1) ? (r.chance(0.5) ? [] : [['authorization', r.pick(AUTH_VALUES)]]) : [['authorization', `Bearer ${r.chance(0.5) ? t.rawToken : t.governedToken}`]];
  return { route: 'models', req: { method, path, headers: auth, body: Buffer.alloc(0) }, notes: [`${method} ${path}`] };
}

function adminCase(r: Rand): HttpCase {
  const path = r.pick(['/metrics', '/healthz', '/readyz', '/metrics?x=1', '/healthz/', '/', '/v1/chat/completions', '//metrics', '/READYZ', `/${CANARY_EMAIL}`, 'http://127.0.0.1/metrics']);
  const method = r.pick(['GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']);
  const body = method === 'GET' || method === 'HEAD' ? Buffer.alloc(0) : Buffer.from('{"a":1}');
  return { route: 'admin', req: { method, path, headers: [], body }, notes: [`${method} ${path}`] };
}

/** A JSON tree with its Raw/Dup pieces read as JavaScript values (for the protobuf encoder). */
function plain(v: unknown): unknown {
  if (v instanceof Raw) {
    const p = ((): unknown => {
      try {
        return JSON.parse(v.text);
      } catch {
        return v.text === 'NaN' ? NaN : v.text.includes('Infinity') ? (v.text.startsWith('-') ? -Infinity : Infinity) : v.text;
      }
    })();
    return p;
  }
  if (v instanceof Dup) return plain({ ...v.obj, [v.key]: v.second });
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

interface GrpcCase {
  method: string;
  token: string;
  frame: Buffer;
  notes: string[];
  headers: Record<string, string>;
}

function grpcCase(r: Rand, t: FuzzTarget): GrpcCase {
  const seed = r.pick(GRPC_SEEDS);
  const notes = [seed.name];
  const method = r.pick(['Render', 'Complete', 'StreamComplete']);
  notes.push(method);
  const valid = encodeRequest(seed.body)!;
  let message: Buffer = valid;
  if (r.chance(0.75)) {
    const m = mutateJson(r, seed.body, () => false);
    let enc: Buffer | undefined;
    try {
      enc = encodeRequest(plain(m.body));
    } catch {
      enc = undefined;
    }
    if (enc !== undefined) {
      message = enc;
      notes.push(...m.notes);
    } else notes.push('(mutation not encodable)');
  }
  if (r.chance(0.25)) {
    message = damageBytes(r, message);
    notes.push('bytes');
  }
  let frame = grpcFrame(message);
  if (r.chance(0.04)) {
    const k = r.int(3);
    frame = k === 0 ? grpcFrame(message, { compressed: true }) : k === 1 ? grpcFrame(message, { declared: Math.max(0, message.length - 1 - r.int(4)) }) : Buffer.concat([grpcFrame(message), grpcFrame(message)]);
    notes.push(['compressed-flag', 'short-declared', 'two-messages'][k]!);
  }
  const headers: Record<string, string> = {};
  let token = seed.raw ? t.rawToken : t.governedToken;
  if (r.chance(0.05)) {
    token = r.pick([CANARY_TOKEN, `${CANARY_TOKEN} x`, '']);
    notes.push('auth');
  }
  if (r.chance(0.03)) {
    headers['grpc-encoding'] = r.pick(['gzip', 'identity', 'snappy']);
    notes.push(`grpc-encoding ${headers['grpc-encoding']}`);
  }
  return { method, token, frame, notes, headers };
}

function showRequest(req: RawRequest): string {
  const head = `${req.method} ${req.path} ${req.headers.map(([k, v]) => `${k}: ${v.slice(0, 60)}`).join(' | ')}${req.chunkedAt ? ` chunked@${req.chunkedAt.join(',')}` : ''}`;
  const body = req.body.toString('utf8');
  return `${head} :: ${body.length > 600 ? `${body.slice(0, 600)}…(${body.length})` : body}`;
}

const DEADLINE_MS = 8000;

/** Runs `counts` cases per route from `seed`; `log` sees each failure as it is found. */
export async function runFuzz(t: FuzzTarget, seed: number, counts: FuzzCounts, log: (f: FuzzFailure) => void = () => {}): Promise<FuzzReport> {
  const report: FuzzReport = { cases: { chat: 0, messages: 0, models: 0, admin: 0, grpc: 0 }, statuses: {}, failures: [], strictChecked: 0 };
  const httpPort = Number(t.http.split(':').pop());
  const adminPort = Number(t.admin.split(':').pop());
  const session = http2Session(t.grpc);
  session.on('error', () => {});
  let auditAt = readFrom(t.auditFile, 0).next;
  let logsAt = t.logs.length;
  const extraCanaries = [t.rawToken, t.governedToken];
  const routes: Array<keyof FuzzCounts> = [];
  for (const k of Object.keys(counts) as Array<keyof FuzzCounts>) for (let i = 0; i < counts[k]; i++) routes.push(k);
  // Interleave the routes, deterministically.
  const order = new Rand(seed ^ 0x5bd1e995);
  for (let i = routes.length - 1; i > 0; i--) {
    const j = order.int(i + 1);
    [routes[i], routes[j]] = [routes[j]!, routes[i]!];
  }
  let activeSession = session;
  for (let n = 0; n < routes.length; n++) {
    const route = routes[n]!;
    const caseSeed = (seed * 1_000_003 + n) >>> 0;
    const r = new Rand(caseSeed);
    let problems: string[] = [];
    let notes: string[] = [];
    let request = '';
    let seen = '';
    const answer = t.setUpstreamMode ? new Rand(caseSeed ^ 0x9e3779b9).pick(UPSTREAM_ANSWERS) : 'ok';
    t.setUpstreamMode?.(answer);
    const also = UPSTREAM_CODES[answer];
    if (route === 'grpc') {
      const c = grpcCase(r, t);
      notes = [...c.notes, `upstream ${answer}`];
      request = `${c.method} frame=${c.frame.toString('base64')}`;
      if (activeSession.closed || activeSession.destroyed) {
        activeSession = http2Session(t.grpc);
        activeSession.on('error', () => {});
      }
      const o = await grpcCall(activeSession, c.method, c.token, c.frame, DEADLINE_MS, c.headers);
      problems = checkGrpc(o, also);
      const meta = { ...o.headers, ...o.trailers };
      seen = `${decodeURIComponent(String(meta['grpc-message'] ?? ''))} ${String(meta['warden-param'] ?? '')} ${Buffer.from(String(meta['grpc-status-details-bin'] ?? ''), 'base64').toString('utf8')}`;
      if (o.status !== 0) {
        const key = `grpc ${o.status ?? o.kind} ${String(meta['warden-code'] ?? '')}`;
        report.statuses[key] = (report.statuses[key] ?? 0) + 1;
      } else report.statuses['grpc 0'] = (report.statuses['grpc 0'] ?? 0) + 1;
      if (o.status === 0) seen += o.messages.map((m) => m.toString('utf8')).join('');
    } else {
      const c = route === 'chat' || route === 'messages' ? postCase(r, route, t) : route === 'models' ? modelsCase(r, t) : adminCase(r);
      notes = [...c.notes, `upstream ${answer}`];
      request = showRequest(c.req);
      const o = await rawHttp(route === 'admin' ? adminPort : httpPort, requestBytes(c.req), DEADLINE_MS);
      if (o.kind === 'timeout') problems = ['no answer within the deadline'];
      else if (o.kind === 'no-answer') problems = [`connection closed without an answer (${o.error ?? ''}): ${o.got.toString('latin1').slice(0, 100)}`];
      else {
        // A method node's parser refuses (`post`) is answered before any route is known: OpenAI's shape.
        const shape = c.route === 'admin' ? 'admin' : /^[A-Z]+$/.test(c.req.method) ? routeOf(c.req.path) : 'chat';
        problems = checkHttp(shape, c.req.method, o.res, also);
        const code = parse(o.res.body.toString('utf8'))?.error?.code;
        const key = `${route} ${o.res.status} ${code ?? ''}`;
        report.statuses[key] = (report.statuses[key] ?? 0) + 1;
        seen = `${o.res.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${o.res.body.toString('utf8')}`;
        if (c.strictAddition !== undefined) {
          report.strictChecked++;
          const err = parse(o.res.body.toString('utf8'))?.error;
          if (o.res.status === 200) problems.push(`silent pass: unknown member ${c.strictAddition} accepted`);
          else if (err?.code !== 'invalid_request' || err.param !== c.strictAddition) problems.push(`unknown member ${c.strictAddition} refused as ${String(err?.code)} at ${String(err?.param)}`);
        }
      }
    }
    report.cases[route]++;
    const leaks = canariesIn(seen, extraCanaries);
    if (leaks.length > 0) problems.push(`canary in the answer: ${leaks.join(', ')}`);
    await new Promise((res) => setImmediate(res));
    const audit = readFrom(t.auditFile, auditAt);
    auditAt = audit.next;
    const auditLeaks = canariesIn(audit.text, extraCanaries);
    if (auditLeaks.length > 0) problems.push(`canary in an audit record: ${auditLeaks.join(', ')}`);
    const logText = t.logs.slice(logsAt).join('');
    logsAt = t.logs.length;
    const logLeaks = canariesIn(logText, extraCanaries);
    if (logLeaks.length > 0) problems.push(`canary in a log line: ${logLeaks.join(', ')}`);
    if (answer === 'ok' && /"level":(50|60)/.test(logText)) problems.push(`error log: ${/[^\n]*"level":(50|60)[^\n]*/.exec(logText)?.[0].slice(0, 300)}`);
    // Still serving: a valid call after every 25 cases, and after any failure.
    if (problems.length > 0 || n % 25 === 24) {
      t.setUpstreamMode?.('ok');
      const ok = await rawHttp(httpPort, requestBytes({ method: 'POST', path: '/v1/chat/completions', headers: [['content-type', 'application/json'], ['authorization', `Bearer ${t.governedToken}`]], body: Buffer.from(JSON.stringify(CHAT_SEEDS[0]!.body)) }), DEADLINE_MS);
      if (o200(ok) === false) problems.push('a valid request after this case failed');
      readFrom(t.auditFile, auditAt);
      auditAt = readFrom(t.auditFile, auditAt).next;
      logsAt = t.logs.length;
    }
    if (problems.length > 0) {
      const f: FuzzFailure = { route, caseSeed, problems, notes, request };
      report.failures.push(f);
      log(f);
    }
  }
  activeSession.close();
  return report;
}

function o200(o: HttpOutcome): boolean {
  return o.kind === 'response' && o.res.status === 200;
}

/** Re-creates one case by its seed (to minimise a failure by hand). */
export function caseOf(route: Route | 'grpc', caseSeed: number, t: FuzzTarget): HttpCase | GrpcCase {
  const r = new Rand(caseSeed);
  if (route === 'grpc') return grpcCase(r, t);
  if (route === 'chat' || route === 'messages') return postCase(r, route, t);
  return route === 'models' ? modelsCase(r, t) : adminCase(r);
}
