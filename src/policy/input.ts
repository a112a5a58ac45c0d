/**
 * The policy input (DESIGN.md, "Policy input"; versioned by POLICY_INPUT_VERSION). Built from
 * names and metadata only: variable *names*, never values; the principal without its token.
 */
import { WardenError } from '../pipeline/errors.js';
import type { RequestContext } from '../pipeline/stage.js';
import { POLICY_INPUT_VERSION, type Approval, type PolicyInput, type Principal, type Template } from '../pipeline/types.js';

export interface PolicyEnvironment {
  name: string;
  cluster: string;
  [key: string]: unknown;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Same rule as the templates stage (a date-only `retire_after` lasts through that day, UTC;
 * unparseable counts as retired). Duplicated on purpose: stages do not import each other.
 */
function retired(retireAfter: string | undefined, nowMs: number): boolean {
  if (retireAfter === undefined) return false;
  const t = DATE_ONLY.test(retireAfter) ? Date.parse(`${retireAfter}T00:00:00Z`) + 86_399_999 : Date.parse(retireAfter);
  return Number.isNaN(t) || nowMs > t;
}

/** The most recent approval (by `at`, else the last listed). */
export function mostRecentApproval(approvals: readonly Approval[]): Approval | null {
  let best: Approval | null = null;
  for (const a of approvals) if (!best || (a.at ?? '') >= (best.at ?? '')) best = a;
  return best ? { ...best } : null;
}

function principalInput(p: Principal): Principal {
  // A fresh object with only the documented fields: nothing else an authenticator attached leaks in.
  const out: Principal = { kind: p.kind, subject: p.subject, audiences: p.audiences.slice() };
  if (p.namespace !== undefined) out.namespace = p.namespace;
  if (p.service_account !== undefined) out.service_account = p.service_account;
  if (p.pod !== undefined) out.pod = p.pod;
  if (p.spiffe_id !== undefined) out.spiffe_id = p.spiffe_id;
  if (p.issuer !== undefined) out.issuer = p.issuer;
  return out;
}

function templateInput(t: Template, nowMs: number): NonNullable<PolicyInput['template']> {
  const secretRefs: string[] = [];
  for (const name in t.variables) {
    const v = t.variables[name]!;
    if (v.source === 'secret' && v.ref && !secretRefs.includes(v.ref)) secretRefs.push(v.ref);
  }
  return {
    id: t.id,
    version: t.version,
    owner: t.owner,
    sensitivity: t.sensitivity,
    approval: mostRecentApproval(t.approvals),
    approvals: t.approvals.map((a) => ({ ...a })),
    retire_after: t.retire_after ?? null,
    retired: retired(t.retire_after, nowMs),
    allowed_services: t.allowed_services.slice(),
    models: t.models.slice(),
    secret_refs: secretRefs,
  };
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
      raw: req.template === undefined,
      tools: req.tools?.length ?? 0,
    },
    environment: { ...environment },
    time: { now_ns: nowMs * 1_000_000, rfc3339: new Date(nowMs).toISOString() },
  };
}
