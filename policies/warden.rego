# Warden's default policy: the decision for one LLM call.
#
# Warden evaluates `data.warden.decision` with the call's metadata as `input` (principal,
# action, template, request, environment, time — never prompt text or variable values; see
# README.md, "Policy reference") and enforces what comes back. Anything the decision does not
# grant is denied, so the rules below list reasons to deny and grants to give, nothing else.
#
# Copy this file as the starting point for your own policy. Change the tables first; most
# teams never need to touch the rules.
package warden

import rego.v1

# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

# Models per sensitivity. Restricted prompts go only to models covered by a zero-retention
# agreement, and to `echo`, which answers locally and never leaves the machine.
models_by_sensitivity := {
	"public": ["echo", "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "claude-3-5-haiku-latest", "claude-sonnet-4-0"],
	"internal": ["echo", "gpt-4o-mini", "gpt-4o", "claude-sonnet-4-0"],
	"restricted": ["echo", "gpt-4o-mini"],
}

# How a prompt is redacted before it leaves Warden, per sensitivity.
redaction_by_sensitivity := {
	# Public text may be read upstream; stray PII is still masked.
	"public": {"profile": "standard", "entities": [], "mode": "mask", "modes": {}, "reidentify": false, "fail_open": false},
	# Internal: PII becomes stable tokens the model can reason about; the caller gets the
	# original values back in the answer.
	"internal": {"profile": "standard", "entities": [], "mode": "tokenize", "modes": {}, "reidentify": true, "fail_open": false},
	# Restricted: more detectors, tokens are never turned back into values, and a secret found
	# in the prompt stops the call instead of being redacted.
	"restricted": {"profile": "strict", "entities": [], "mode": "tokenize", "modes": {"SECRETS": "block"}, "reidentify": false, "fail_open": false},
}

# Upper bound on completion tokens; Warden lowers a larger request to it.
max_tokens_by_sensitivity := {"public": 4096, "internal": 4096, "restricted": 2048}

known_actions := {"prompt.execute", "prompt.render", "models.list"}

# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------

decision := {
	"allow": allow,
	"reasons": sort(reasons),
	"secrets": secrets,
	"models": models,
	"max_tokens": max_tokens_by_sensitivity[sensitivity],
	"redaction": redaction_by_sensitivity[sensitivity],
	# Variable names (never values) help debugging; restricted calls keep the record minimal.
	"audit": {"log_variables_names": sensitivity != "restricted"},
}

# Deny by default: allow only a well-formed request that no rule found a reason to deny.
default allow := false

allow if {
	input.action in known_actions
	is_string(input.principal.subject)
	count(reasons) == 0
}

# A raw (untemplated) prompt has no template to say how sensitive it is: treat it as internal.
# An unknown sensitivity gets the restricted settings (and is denied below).
default sensitivity := "internal"

sensitivity := s if {
	s := input.template.sensitivity
	models_by_sensitivity[s]
} else := "restricted" if input.template.sensitivity

# ---------------------------------------------------------------------------------------------
# Reasons to deny (each one is returned to the caller and written to the audit record)
# ---------------------------------------------------------------------------------------------

reasons contains "unknown action" if not input.action in known_actions

# Warden versions its input; this policy was written for version 1 and refuses to guess at others.
reasons contains sprintf("unsupported policy input version %v", [input_version]) if {
	not input.version == 1
}

reasons contains "unknown template sensitivity" if {
	input.template.sensitivity
	not models_by_sensitivity[input.template.sensitivity]
}

# Only reviewed, templated prompts run in production; raw prompts are for development.
# Listing models sends no prompt, so it is allowed everywhere.
reasons contains "raw (untemplated) prompts are not allowed in production" if {
	input.template == null
	input.action != "models.list"
	input.environment.name == "production"
}

reasons contains sprintf("template %s@%v is retired", [input.template.id, input.template.version]) if {
	input.template.retired == true
}

# A template that lists services runs only for them. A restricted template must list them:
# handling restricted data is granted to named services, never to everyone.
reasons contains sprintf("%s may not use template %s", [input.principal.subject, input.template.id]) if {
	count(input.template.allowed_services) > 0
	not service_allowed
}

reasons contains sprintf("restricted template %s lists no allowed services", [input.template.id]) if {
	input.template.sensitivity == "restricted"
	count(input.template.allowed_services) == 0
}

# Restricted templates run only once security has signed them off.
reasons contains sprintf("restricted template %s has no approval", [input.template.id]) if {
	input.template.sensitivity == "restricted"
	not approved
}

# Restricted prompts go only to models under a zero-retention agreement (the table above): a call
# may not ask the provider to keep them (OpenAI's `store`, which keeps the completion for the
# provider's dashboard and evals). `input.request.params` holds the call's other parameters; any
# `store` but false or null counts, so that a mistyped `1` or `"true"` (given as "string"), which a
# lenient upstream may read as true, is refused too.
reasons contains "restricted prompts may not be stored by the provider (store must be false or absent)" if {
	sensitivity == "restricted"
	asks_to_store
}

# ---------------------------------------------------------------------------------------------
# Grants (empty unless the call is allowed: least privilege)
# ---------------------------------------------------------------------------------------------

# The secrets the template's variables reference, and nothing else.
default secrets := []

secrets := input.template.secret_refs if allow

# The sensitivity's models, narrowed to the ones the template was written for (if it says).
default models := []

models := [m | some m in models_by_sensitivity[sensitivity]; m in template_models] if allow

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

# The input's version as given (null included), or "none" without one. Read as `input.version`
# rather than `object.get(input, ...)`, which reads the whole input and so turns Warden's
# decision cache off (README, "Decision cache").
default input_version := "none"

input_version := input.version

# `namespace/service_account`; undefined (so never allowed) for principals without both.
principal_service := concat("/", [input.principal.namespace, input.principal.service_account])

# Entries are globs with `/` as the separator: `payments/*` is any service account in the
# payments namespace, `*/*` is any service.
service_allowed if {
	some pattern in input.template.allowed_services
	glob.match(pattern, ["/"], principal_service)
}

approved if {
	input.template.approval.by != ""
	input.template.approval.ticket != ""
}

asks_to_store if {
	store := input.request.params.store
	store != false
	store != null
}

# A template without a model list (or a raw prompt) does not narrow the sensitivity's list.
template_models := input.template.models if {
	count(input.template.models) > 0
} else := models_by_sensitivity[sensitivity]
