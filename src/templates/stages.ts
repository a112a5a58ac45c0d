/**
 * Stage 2 (resolve) and stage 5 (render). The store is read through a function on every request
 * so that hot reload can swap it without rebuilding the pipeline. Resolve also checks the
 * request's variables against the template it found, so that a call that cannot render ends
 * before the policy is asked and before any secret is fetched.
 */
import { WardenError } from '../pipeline/errors.js';
import { isTemplateId } from '../pipeline/identifiers.js';
import type { TemplateStore } from '../pipeline/ports.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import type { RenderedText } from './provenance.js';
import { MIB } from '../pipeline/sizes.js';
import { checkRenderedSize, checkRequestVariables, renderTemplate } from './renderer.js';
import { isRetired } from './retire.js';

export interface TemplateStageOptions {
  /**
   * The largest prompt a template may render, in UTF-8 bytes: `limits.max_body_bytes`, what a raw
   * prompt's body may hold (see checkRenderedSize). 1 MiB, the config's default, when not given.
   */
  maxPromptBytes?: number;
}

export function createResolveStage(getStore: () => TemplateStore, opts: TemplateStageOptions & { now?: () => number } = {}): Stage {
  const now = opts.now ?? Date.now;
  const maxPromptBytes = opts.maxPromptBytes ?? MIB;
  return {
    name: 'resolve',
    run(ctx: RequestContext) {
      const ref = ctx.request.template;
      if (!ref) return; // raw (untemplated) request: the policy decides whether that is allowed
      const label = ref.version === undefined ? ref.id : `${ref.id}@${ref.version}`;
      // The field the caller named it in: the body's, or the x-warden-template header.
      const path = ctx.request.templatePath ?? 'warden.template';
      const store = getStore();
      ctx.templateRevision = store.revision;
      const template = store.get(ref.id, ref.version);
      if (!template) {
        // An id no template has (in any version) is the caller's data — it may hold anything, a
        // card number included — like an unconfigured model name: neither recorded nor echoed.
        // The id of a template that exists is the operator's text: named with the version asked for.
        if (ref.version === undefined || !isTemplateId(ref.id) || !store.get(ref.id)) {
          throw new WardenError('template_not_found', 'no template has the requested id', { location: { path } });
        }
        ctx.refusedTemplate = { id: ref.id, version: ref.version };
        throw new WardenError('template_not_found', `template ${label} not found`, { location: { path }, details: { template: label } });
      }
      if (isRetired(template, now())) {
        ctx.refusedTemplate = { id: template.id, version: template.version, template };
        throw new WardenError('template_retired', `template ${template.id}@${template.version} was retired after ${template.retire_after}`, {
          location: { path },
          details: { template: `${template.id}@${template.version}`, retire_after: template.retire_after },
        });
      }
      // Set first: a call refused for its variables is audited with the template it asked for.
      ctx.template = template;
      // The variables are checked here, before the policy and the fetch stage run: a call that
      // cannot render must not read a secret (or cost a policy evaluation). The checked values
      // are kept for render, which would otherwise check them again.
      const values = checkRequestVariables(template, ctx.request.variables, ctx.request.variablesPath);
      // The secrets' values are not known yet: render counts them (when the template has any).
      checkRenderedSize(template, values, maxPromptBytes, ctx.request.variablesPath);
      ctx.variableValues = values;
    },
  };
}

export function createRenderStage(opts: TemplateStageOptions = {}): Stage {
  const maxPromptBytes = opts.maxPromptBytes ?? MIB;
  return {
    name: 'render',
    run(ctx: RequestContext) {
      const template = ctx.template;
      if (!template) {
        if (ctx.request.template) throw new WardenError('internal', 'render stage ran before the template was resolved');
        if (!ctx.request.messages || ctx.request.messages.length === 0) {
          throw new WardenError('invalid_request', 'request has neither a template nor messages', { location: { path: 'messages' } });
        }
        ctx.messages = ctx.request.messages;
        return;
      }
      // Checked by resolve (checkRequestVariables, checkRenderedSize) when it ran on this context; else here.
      const resolved = ctx.variableValues !== undefined;
      const values = ctx.variableValues ?? checkRequestVariables(template, ctx.request.variables, ctx.request.variablesPath);
      let inPrompt: Set<string> | undefined;
      // Names of the values that are not the caller's (see renderTemplate): a config value is fixed
      // for the template object, a cached secret value has the resolver's stamp.
      let stamps: Record<string, string> | undefined;
      // The secret variables: where their values land is recorded for redaction (renderTemplate).
      let secretVariables: Set<string> | undefined;
      for (const name in template.variables) {
        const spec = template.variables[name]!;
        if (spec.source === 'request') {
          if (values[name] === undefined && !spec.required) values[name] = '';
        } else if (spec.source === 'config') {
          values[name] = spec.value ?? '';
          (stamps ??= Object.create(null) as Record<string, string>)[name] = 'config';
        } else {
          const ref = spec.ref ?? '';
          const v = ctx.secrets?.get(ref);
          if (v === undefined) {
            throw new WardenError('secret_unavailable', `secret ${ref} was not resolved for variable ${name}`, { details: { ref, variable: name } });
          }
          values[name] = v;
          (secretVariables ??= new Set()).add(name);
          (inPrompt ??= ctx.secretsInPrompt ?? new Set()).add(ref);
          const stamp = ctx.secretStamps?.get(ref);
          if (stamp !== undefined) (stamps ??= Object.create(null) as Record<string, string>)[name] = stamp;
        }
      }
      if (inPrompt) ctx.secretsInPrompt = inPrompt;
      // Resolve counted every value but the secrets'.
      if (secretVariables !== undefined || !resolved) checkRenderedSize(template, values, maxPromptBytes, ctx.request.variablesPath);
      const json: Array<string | undefined> = [];
      const provenance: RenderedText[] = [];
      ctx.messages = renderTemplate(template, values, json, provenance, stamps, secretVariables);
      ctx.contentJson = json;
      ctx.renderProvenance = provenance;
    },
  };
}
