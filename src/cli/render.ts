/**
 * `warden render`: the dry run. Runs the real pipeline with action `prompt.render` (which stops
 * after redaction) and prints the decision and the outbound prompt, secret values masked (the
 * pipeline's dry run never hands its caller a secret).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { isWardenError, WardenError } from '../pipeline/errors.js';
import { isModelName, isTemplateId, MAX_TEMPLATE_VERSION, MODEL_NAME_RULE, VARIABLE_NAME } from '../pipeline/identifiers.js';
import type { Principal, PromptRequest } from '../pipeline/types.js';
import { createLogger } from '../telemetry/logger.js';
import { createRuntime, ingressLimits } from '../runtime/runtime.js';
import { checkVariables, parseTemplateRef, rejectedRequest, unsafeJsonNumber } from '../server/request.js';
import { FileTooLargeError, openRegularFile, readAtMost, readFailure } from '../pipeline/regular-file.js';
import { decodeText, TextDecodeError } from '../pipeline/text-file.js';
import { parse, requireString, UsageError } from './args.js';
import { processStdin, readAllCapped, stdinReadFailure } from './stdin.js';
import { RENDER_HELP } from './help.js';
import type { CliIO } from './io.js';
import { MIB } from '../pipeline/sizes.js';
import { jsonLiterals } from '../redact/index.js';

export const OPTIONS = {
  config: { type: 'string', short: 'c' },
  template: { type: 'string', short: 't' },
  var: { type: 'string', multiple: true },
  vars: { type: 'string' },
  model: { type: 'string', short: 'm' },
  principal: { type: 'string', short: 'p' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function principalFrom(text: string): Principal {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  if (!m) throw new UsageError('--principal must be NAMESPACE/SERVICE_ACCOUNT, e.g. support/ticket-bot');
  const namespace = m[1] as string;
  const sa = m[3] as string;
  return {
    kind: 'kubernetes',
    subject: `system:serviceaccount:${namespace}:${sa}`,
    namespace,
    service_account: sa,
    audiences: [],
  };
}

function variablesFrom(list: string[]): Record<string, string> {
  const vars: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var must be NAME=VALUE (got a value without '=' or without a name)`);
    const name = item.slice(0, eq);
    // The ingress refuses such names before any stage; a dry run must not get further with one
    // (its audit record would carry it). The name is not repeated: it may be a value mistyped.
    if (!VARIABLE_NAME.test(name)) throw new UsageError('--var NAME must be an identifier (letters, digits and _, at most 128 characters)');
    // One value per variable, as for any single-valued option: the dry run is where an operator
    // checks what would be sent, so neither value may win silently. (The name is an identifier.)
    if (Object.hasOwn(vars, name)) throw new UsageError(`--var ${name} is given more than once (a variable takes one value)`);
    vars[name] = item.slice(eq + 1);
  }
  return vars;
}

/** The largest `--vars` document read (the default limits.max_body_bytes: a request carries no more). */
const MAX_VARS_BYTES = MIB;

/** A `--vars` document that cannot be used: printed as `file[:line:col]: code: message` (exit 1). */
class VarsError extends Error {
  constructor(
    readonly where: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'VarsError';
  }
}

/**
 * `--vars FILE` (`-`: stdin): a JSON object of variables, as a request's `warden.variables` holds
 * them (strings, numbers, booleans; a number renders as JSON.stringify writes it). Values stay off
 * the command line, where `ps` and shell history would show them. A bad document is an error
 * (exit 1), as a bad `policy eval -i` input is, naming variables but never a value.
 */
async function variablesFromDocument(file: string, stdin: () => NodeJS.ReadableStream): Promise<Record<string, string>> {
  const where = file === '-' ? 'stdin' : file;
  let text: string;
  try {
    if (file === '-') {
      text = await readAllCapped(stdin(), MAX_VARS_BYTES);
    } else {
      const fh = await openRegularFile(file);
      try {
        const { size } = await fh.stat();
        if (size > MAX_VARS_BYTES) throw new VarsError(where, 'payload_too_large', 'input is larger than 1 MiB');
        try {
          text = decodeText(await readAtMost(fh, MAX_VARS_BYTES, size));
        } catch (e) {
          if (e instanceof FileTooLargeError) throw new VarsError(where, 'payload_too_large', 'input is larger than 1 MiB');
          throw e;
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
  } catch (err) {
    if (err instanceof VarsError) throw err;
    if (isWardenError(err)) throw new VarsError(where, err.code, err.message); // stdin past the cap
    if (err instanceof TextDecodeError) throw new VarsError(`${where}:${err.line}:${err.column}`, 'invalid_request', `cannot parse variables: ${err.reason}`);
    const reason = file === '-' ? stdinReadFailure(err) : readFailure(err);
    if (reason === undefined) throw err;
    throw new VarsError(where, 'file_unreadable', `cannot read ${file === '-' ? 'stdin' : 'the file'} (${reason})`);
  }
  let parsed: unknown;
  try {
    // JSON.parse's own message quotes the text; only the fact is said.
    parsed = JSON.parse(text);
  } catch {
    throw new VarsError(where, 'invalid_request', 'cannot parse variables: not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new VarsError(where, 'invalid_request', 'the variables must be a JSON object of NAME: value');
  }
  // JSON.parse keeps the last of a repeated member without a word: a variable written twice (a
  // script that appends to the document) is refused as --var twice is, naming it and where.
  const repeated = repeatedVariable(text);
  if (repeated !== undefined) {
    throw new UsageError(`${where}:${repeated.line}:${repeated.column}: variable ${repeated.name} is given more than once in --vars (a variable takes one value)`);
  }
  const vars: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(parsed)) {
    // The name is not repeated unless it is an identifier: it may be a value written in its place.
    if (name === '__proto__' || !VARIABLE_NAME.test(name)) {
      throw new VarsError(where, 'invalid_request', 'a variable name is not an identifier (letters, digits and _, at most 128 characters)');
    }
    if (typeof value === 'string' || typeof value === 'boolean') {
      vars[name] = String(value);
    } else if (typeof value === 'number') {
      const unsafe = unsafeJsonNumber(name, value);
      if (unsafe !== undefined) throw new VarsError(where, 'variable_invalid', unsafe);
      vars[name] = String(value);
    } else {
      throw new VarsError(where, 'variable_invalid', `variable '${name}' must be a string, number or boolean`);
    }
  }
  return vars;
}

/**
 * The first member name of the document's top-level object (`text` is valid JSON) that repeats an
 * earlier one, with the line and column of the repeat; only identifier names, which can be
 * repeated in an error (any other name is refused as no identifier, unrepeated).
 */
function repeatedVariable(text: string): { name: string; line: number; column: number } | undefined {
  const seen = new Set<string>();
  for (const lit of jsonLiterals(text)) {
    if (lit.kind !== 'name' || lit.object !== 1) continue;
    const name = JSON.parse(text.slice(lit.start, lit.end)) as string;
    if (!seen.has(name)) {
      seen.add(name);
      continue;
    }
    if (!VARIABLE_NAME.test(name)) continue;
    const before = text.slice(0, lit.start);
    return { name, line: before.split('\n').length, column: lit.start - before.lastIndexOf('\n') };
  }
  return undefined;
}

/**
 * The model a dry run asks for when none is given: the template's first model that the config
 * routes (a model it does not route would only be refused), else the template's first (refused
 * with the reason, as the call would be), else the config's first.
 */
function defaultModel(templateModels: readonly string[], configured: readonly string[]): string {
  return templateModels.find((m) => configured.includes(m)) ?? templateModels[0] ?? configured[0] ?? '';
}

export async function runRenderCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parse(argv, OPTIONS);
  if (values.help) {
    io.out(RENDER_HELP);
    return 0;
  }
  const configFile = requireString(values, 'config');
  const templateText = requireString(values, 'template');
  let template: { id: string; version?: number };
  try {
    template = parseTemplateRef(templateText, '--template');
  } catch {
    // Which half is wrong: `Support/x@1` has a good version, and was told its version was bad.
    const at = templateText.lastIndexOf('@');
    if (!isTemplateId(at < 0 ? templateText : templateText.slice(0, at))) {
      throw new UsageError("--template ID must be a lower-case path such as support/ticket-summary (letters a-z, digits, '.', '_', '-' and '/')");
    }
    if (/^[1-9][0-9]{9,}$/.test(templateText.slice(at + 1))) throw new UsageError(`--template VERSION must be at most ${MAX_TEMPLATE_VERSION}`);
    throw new UsageError('--template must be ID or ID@VERSION with a positive integer version');
  }
  const variables = variablesFrom((values.var as string[] | undefined) ?? []);
  if (typeof values.vars === 'string') {
    let fromDocument: Record<string, string>;
    try {
      fromDocument = await variablesFromDocument(values.vars, io.stdin ?? processStdin);
    } catch (err) {
      if (!(err instanceof VarsError)) throw err;
      io.err(`warden: ${err.where}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    for (const name of Object.keys(fromDocument)) {
      // Given twice is a mistake, whichever two places (as --var twice is).
      if (Object.hasOwn(variables, name)) throw new UsageError(`--var ${name} is also in --vars (a variable takes one value)`);
      variables[name] = fromDocument[name]!;
    }
  }
  const principalOverride = typeof values.principal === 'string' ? principalFrom(values.principal) : undefined;

  const config = loadConfig(configFile, process.env);
  // The dry run carries no token: without --principal only the dev method can authenticate it.
  if (!principalOverride && !config.identity.methods.includes('dev')) {
    throw new UsageError(
      `--principal NAMESPACE/SERVICE_ACCOUNT is required: the config has no dev identity (identity.methods: ${config.identity.methods.join(', ') || 'none'})`,
    );
  }
  // Diagnostics go to stderr so stdout carries only the result.
  const logger = createLogger({ level: 'warn', format: 'text', base: { service: 'warden' } }, { write: (s: string) => io.err(s) });
  const runtime = await createRuntime(config, { logger, principalOverride, watch: false, auditToStderr: true, configDir: dirname(resolve(configFile)) });
  try {
    let model = typeof values.model === 'string' ? values.model : undefined;
    model ||= defaultModel(runtime.live()?.templates.get(template.id, template.version)?.models ?? [], Object.keys(config.models));
    const request: PromptRequest = {
      id: randomUUID(),
      protocol: 'grpc',
      action: 'prompt.render',
      model,
      template,
      variables,
      stream: false,
      params: {},
      // The operator runs this on the machine itself: a local peer, like a Unix socket caller.
      credentials: { peer: { address: 'unix', local: true, transport: 'unix' } },
      signal: new AbortController().signal,
      receivedAt: performance.timeOrigin + performance.now(),
    };
    let response;
    try {
      // What the ingress refuses before the pipeline (a value longer than limits.max_variable_length,
      // more variables than limits.max_variables, a model name no request could carry), the dry
      // run refuses too, with the same code: it must not show as sendable what the call refuses.
      // The principal first (as the ingress authenticates before it reads a body), so the
      // record of such a refusal names who asked.
      const admitted = await runtime.pipeline.authenticate(request);
      try {
        if (!isModelName(model)) throw new WardenError('invalid_request', `field 'model' ${MODEL_NAME_RULE}`, { location: { path: 'model' } });
        checkVariables(variables, ingressLimits(config), 'variables');
      } catch (err) {
        if (isWardenError(err)) {
          await runtime.pipeline.auditRejected(rejectedRequest({ ...request, peer: request.credentials.peer }, 'grpc', 'prompt.render'), err, admitted);
        }
        throw err;
      }
      response = await runtime.pipeline.run(request, admitted);
    } catch (err) {
      const e = isWardenError(err) ? err : new WardenError('internal', 'internal error');
      if (values.json) {
        io.out(`${JSON.stringify({ allowed: false, error: { code: e.code, message: e.message, details: e.details ?? null } }, null, 2)}\n`);
      } else {
        io.err(`refused: ${e.code}: ${e.message}\n`);
        const reasons = (e.details?.reasons as unknown[] | undefined) ?? [];
        for (const r of reasons) io.err(`  reason: ${String(r)}\n`);
      }
      return 1;
    }
    if (response.kind !== 'render') throw new WardenError('internal', 'internal error');
    if (values.json) {
      io.out(
        `${JSON.stringify(
          { allowed: true, decision: response.decision, model: response.model, provider: response.provider, messages: response.messages },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    const d = response.decision;
    io.out('Decision\n');
    io.out(`  allow:      ${d.allow}\n`);
    io.out(`  id:         ${d.id}\n`);
    io.out(`  reasons:    ${d.reasons.length ? d.reasons.join('; ') : '-'}\n`);
    io.out(`  models:     ${d.models.join(', ') || '-'}\n`);
    io.out(`  secrets:    ${d.secrets.join(', ') || '-'}\n`);
    io.out(`  redaction:  profile=${d.redaction.profile}${d.redaction.mode ? ` mode=${d.redaction.mode}` : ''}\n`);
    if (d.max_tokens !== undefined) io.out(`  max_tokens: ${d.max_tokens}\n`);
    io.out(`\nUpstream: provider=${response.provider} model=${response.model}\n`);
    io.out('\nPrompt (as it would be sent; secret values masked):\n');
    for (const m of response.messages) {
      const content = typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
      io.out(`--- ${m.role} ---\n${content}\n`);
    }
    return 0;
  } finally {
    await runtime.shutdown('render finished');
  }
}
