/**
 * The policy input (DESIGN.md, "Policy input"; versioned by POLICY_INPUT_VERSION). Built from
 * names and metadata only: variable *names*, never values; the principal without its token.
 */
import { countAttachments } from '../pipeline/attachments.js';
import { isoTime } from '../pipeline/clock.js';
import { mostRecentApproval } from '../pipeline/approvals.js';
import { governanceInstant } from '../pipeline/instants.js';
import { WardenError } from '../pipeline/errors.js';
import type { RequestContext } from '../pipeline/stage.js';
import { POLICY_INPUT_VERSION, type Approval, type PolicyInput, type Principal, type Template } from '../pipeline/types.js';
import { paramsInput } from './params-input.js';

export interface PolicyEnvironment {
  name: string;
  cluster: string;
  [key: string]: unknown;
}

/*
 * The retirement rule is the templates stage's (a date-only `retire_after` lasts through that
 * day, UTC; unparseable counts as retired): both read the instant with pipeline/instants.ts, and
 * this file keeps only the few lines that apply it, as stages do not import each other.
 */

/** The most recent approval (pipeline/approvals.ts, the audit record's rule too), as a copy the input may freeze. */
function latestApprovalCopy(approvals: readonly Approval[]): Approval | null {
  const best = mostRecentApproval(approvals);
  return best ? { ...best } : null;
}

/**
 * Frozen principals (what the authenticators return: one object per caller, shared by its
 * requests) → their frozen part of the input, built once. The key is the principal object, whose
 * fields cannot change, so the entry can never be stale.
 */
const principalInputs = new WeakMap<Principal, Principal>();

function principalInput(p: Principal): Principal {
  const shared = Object.isFrozen(p) && Object.isFrozen(p.audiences);
  if (shared) {
    const known = principalInputs.get(p);
    if (known) return known;
  }
  // A fresh object with only the documented fields: nothing else an authenticator attached leaks in.
  const out: Principal = { kind: p.kind, subject: p.subject, audiences: p.audiences.slice() };
  if (p.namespace !== undefined) out.namespace = p.namespace;
  if (p.service_account !== undefined) out.service_account = p.service_account;
  if (p.pod !== undefined) out.pod = p.pod;
  if (p.spiffe_id !== undefined) out.spiffe_id = p.spiffe_id;
  if (p.issuer !== undefined) out.issuer = p.issuer;
  if (shared) principalInputs.set(p, deepFreeze(out));
  return out;
}

/** The environment part of the input: a frozen copy per configured environment object. */
const environmentInputs = new WeakMap<PolicyEnvironment, PolicyEnvironment>();

function environmentInput(e: PolicyEnvironment): PolicyEnvironment {
  let copy = environmentInputs.get(e);
  if (copy === undefined) {
    copy = deepFreeze(structuredClone(e));
    environmentInputs.set(e, copy);
  }
  return copy;
}

type TemplateInput = NonNullable<PolicyInput['template']>;

/**
 * A template's part of the input depends only on the template (immutable once loaded; a reload
 * brings new objects) and on whether it is retired yet, so it is built once per template and
 * state, frozen, and shared by every request: no per-request copies of its lists.
 */
interface TemplateInputs {
  retireAt: number;
  live: TemplateInput;
  retired: TemplateInput;
}

const templateInputs = new WeakMap<Template, TemplateInputs>();

/** Epoch ms after which the template counts as retired (Infinity: never; -Infinity: unparseable). */
function retireInstant(retireAfter: string | undefined): number {
  if (retireAfter === undefined) return Infinity;
  const t = governanceInstant(retireAfter, 'end');
  return Number.isNaN(t) ? -Infinity : t;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

function buildTemplateInput(t: Template, isRetired: boolean): TemplateInput {
  const secretRefs: string[] = [];
  const piiVariables: string[] = [];
  for (const name in t.variables) {
    const v = t.variables[name]!;
    if (v.source === 'secret' && v.ref && !secretRefs.includes(v.ref)) secretRefs.push(v.ref);
    if (v.pii) piiVariables.push(name);
  }
  return deepFreeze({
    id: t.id,
    version: t.version,
    owner: t.owner,
    sensitivity: t.sensitivity,
    approval: latestApprovalCopy(t.approvals),
    approvals: t.approvals.map((a) => ({ ...a })),
    retire_after: t.retire_after ?? null,
    retired: isRetired,
    allowed_services: t.allowed_services.slice(),
    models: t.models.slice(),
    secret_refs: secretRefs,
    pii_variables: piiVariables.sort(),
  });
}

function templateInput(t: Template, nowMs: number): TemplateInput {
  let cached = templateInputs.get(t);
  if (!cached) {
    cached = { retireAt: retireInstant(t.retire_after), live: buildTemplateInput(t, false), retired: buildTemplateInput(t, true) };
    templateInputs.set(t, cached);
  }
  return nowMs > cached.retireAt ? cached.retired : cached.live;
}

/**
 * `nowMs` in nanoseconds, exactly: a bigint, which the Rego engine holds as an exact integer (a
 * double above 2^53 is rounded, so it disagreed with `time.rfc3339`). Requests of the same
 * millisecond share the last value, so a busy server makes one bigint per millisecond.
 */
let lastMs = Number.NaN;
let lastNs = 0n;
function nanosOf(nowMs: number): bigint {
  if (nowMs !== lastMs) {
    lastNs = BigInt(nowMs) * 1_000_000n;
    lastMs = nowMs;
  }
  return lastNs;
}

export function buildPolicyInput(ctx: RequestContext, environment: PolicyEnvironment, nowMs: number): PolicyInput {
  if (!ctx.principal) throw new WardenError('unauthenticated', 'no authenticated principal for the policy decision');
  const req = ctx.request;
  return {
    version: POLICY_INPUT_VERSION,
    principal: principalInput(ctx.principal),
    action: req.action,
    template: ctx.template ? templateInput(ctx.template, nowMs) : null,
    request: {
      protocol: req.protocol,
      provider: ctx.provider ?? null,
      model: req.model,
      max_tokens: req.max_tokens ?? null,
      stream: req.stream,
      variables: Object.keys(req.variables),
      // A models listing carries no prompt, so it is not raw (a policy refusing raw prompts need not special-case it).
      raw: req.template === undefined && req.action !== 'models.list',
      tools: req.tools?.length ?? 0,
      // Counted by the ingress on its walk over the parts; a request built elsewhere is counted here.
      attachments: req.attachments ?? countAttachments(req.messages),
      params: paramsInput(req.params),
    },
    environment: environmentInput(environment),
    time: { now_ns: nanosOf(nowMs), rfc3339: isoTime(nowMs) },
  };
}
