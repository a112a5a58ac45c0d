# Unit tests for the default policy: `warden policy test policies` (or `opa test policies`).
# Each rule of warden.rego has a test that allows and one that denies.
package warden_test

import rego.v1

import data.warden

# A templated call from a service the template lists, in development.
base := {
	"version": 1,
	"principal": {
		"kind": "kubernetes",
		"subject": "system:serviceaccount:support:ticket-bot",
		"namespace": "support",
		"service_account": "ticket-bot",
		"audiences": ["warden"],
	},
	"action": "prompt.execute",
	"template": {
		"id": "support/ticket-summary",
		"version": 2,
		"owner": "support-platform@example.com",
		"sensitivity": "internal",
		"approval": {"by": "dana.lee@example.com", "ticket": "SEC-1042", "at": "2026-03-02"},
		"approvals": [{"by": "dana.lee@example.com", "ticket": "SEC-1042", "at": "2026-03-02"}],
		"retire_after": "2027-12-31",
		"retired": false,
		"allowed_services": ["dev/*", "support/ticket-bot"],
		"models": [],
		"secret_refs": ["file:secrets/escalation-code"],
	},
	"request": {
		"protocol": "openai-http",
		"provider": "echo",
		"model": "echo",
		"max_tokens": null,
		"stream": false,
		"variables": ["ticket_id", "customer_message"],
		"raw": false,
		"tools": 0,
		"attachments": {"image": 0, "audio": 0, "file": 0},
		"params": {},
	},
	"environment": {"name": "development", "cluster": "local"},
	"time": {"now_ns": 1780000000000000000, "rfc3339": "2026-05-28T08:26:40Z"},
}

with_template(patch) := object.union(base, {"template": patch})

raw := object.union(base, {"template": null, "request": {"raw": true}})

production(x) := object.union(x, {"environment": {"name": "production"}})

restricted := with_template({
	"id": "billing/refund-review",
	"sensitivity": "restricted",
	"allowed_services": ["billing/refund-worker"],
	"models": ["echo", "gpt-4o-mini", "gpt-4o"],
})

as_service(x, ns, sa) := object.union(x, {"principal": {
	"subject": sprintf("system:serviceaccount:%s:%s", [ns, sa]),
	"namespace": ns,
	"service_account": sa,
}})

# --- deny by default --------------------------------------------------------------------------

test_allows_a_listed_service_with_a_current_template if {
	d := warden.decision with input as base
	d.allow
	d.reasons == []
}

test_denies_an_empty_input if {
	d := warden.decision with input as {}
	not d.allow
	"unsupported policy input version none" in d.reasons
	d.secrets == []
	d.models == []
}

test_denies_an_unknown_action if {
	d := warden.decision with input as object.union(base, {"action": "files.delete"})
	not d.allow
	"unknown action" in d.reasons
}

test_denies_an_unknown_input_version if {
	d := warden.decision with input as object.union(base, {"version": 2})
	not d.allow
	"unsupported policy input version 2" in d.reasons
}

test_denies_a_null_input_version if {
	d := warden.decision with input as object.union(base, {"version": null})
	not d.allow
	"unsupported policy input version null" in d.reasons
}

test_denies_a_principal_without_a_subject if {
	d := warden.decision with input as object.remove(base, ["principal"])
	not d.allow
}

test_denies_an_unknown_sensitivity_and_redacts_as_restricted if {
	d := warden.decision with input as with_template({"sensitivity": "top-secret"})
	not d.allow
	"unknown template sensitivity" in d.reasons
	d.redaction.profile == "strict"
}

# --- allowed services ---------------------------------------------------------------------------

test_allows_a_service_matched_by_a_namespace_glob if {
	warden.decision.allow with input as as_service(base, "dev", "local")
}

test_denies_a_service_the_template_does_not_list if {
	d := warden.decision with input as as_service(base, "payments", "checkout")
	not d.allow
	"system:serviceaccount:payments:checkout may not use template support/ticket-summary" in d.reasons
}

test_glob_does_not_cross_the_namespace_separator if {
	i := as_service(with_template({"allowed_services": ["dev*"]}), "dev", "local")
	not warden.decision.allow with input as i
}

# A SPIFFE principal has no namespace/service account, so it matches no listed service.
test_denies_a_principal_without_namespace_when_services_are_listed if {
	spiffe := {"kind": "spiffe", "subject": "spiffe://example.org/ns/support/sa/ticket-bot", "audiences": ["warden"]}
	not warden.decision.allow with input as object.union(object.remove(base, ["principal"]), {"principal": spiffe})
}

test_allows_any_service_when_a_non_restricted_template_lists_none if {
	warden.decision.allow with input as as_service(with_template({"allowed_services": []}), "payments", "checkout")
}

# --- restricted templates: listed principals and an approval ---------------------------------

test_allows_restricted_for_a_listed_service_with_approval if {
	d := warden.decision with input as as_service(restricted, "billing", "refund-worker")
	d.allow
}

test_denies_restricted_for_an_unlisted_service if {
	d := warden.decision with input as as_service(restricted, "support", "ticket-bot")
	not d.allow
}

test_denies_restricted_without_approval if {
	i := as_service(object.union(restricted, {"template": {"approval": null, "approvals": []}}), "billing", "refund-worker")
	d := warden.decision with input as i
	not d.allow
	"restricted template billing/refund-review has no approval" in d.reasons
}

test_denies_restricted_with_an_approval_missing_its_ticket if {
	i := as_service(object.union(restricted, {"template": {"approval": {"by": "sam", "ticket": ""}}}), "billing", "refund-worker")
	not warden.decision.allow with input as i
}

test_denies_restricted_that_lists_no_services if {
	i := as_service(object.union(restricted, {"template": {"allowed_services": []}}), "billing", "refund-worker")
	d := warden.decision with input as i
	not d.allow
	"restricted template billing/refund-review lists no allowed services" in d.reasons
}

test_internal_template_needs_no_approval if {
	warden.decision.allow with input as with_template({"approval": null, "approvals": []})
}

test_denies_storing_a_restricted_prompt if {
	i := as_service(object.union(restricted, {"request": {"params": {"store": true}}}), "billing", "refund-worker")
	d := warden.decision with input as i
	not d.allow
	d.reasons == ["restricted prompts may not be stored by the provider (store must be false or absent)"]
}

test_denies_a_restricted_prompt_with_a_mistyped_store if {
	every store in [1, "string", "object"] {
		i := as_service(object.union(restricted, {"request": {"params": {"store": store}}}), "billing", "refund-worker")
		not warden.decision.allow with input as i
	}
}

test_allows_a_restricted_prompt_that_is_not_stored if {
	every store in [false, null] {
		i := as_service(object.union(restricted, {"request": {"params": {"store": store, "temperature": 0.2}}}), "billing", "refund-worker")
		warden.decision.allow with input as i
	}
}

test_allows_storing_an_internal_prompt if {
	d := warden.decision with input as object.union(base, {"request": {"params": {"store": true}}})
	d.allow
}
# --- retired templates --------------------------------------------------------------------------

test_denies_a_retired_template if {
	d := warden.decision with input as with_template({"retired": true})
	not d.allow
	"template support/ticket-summary@2 is retired" in d.reasons
	d.secrets == []
}

# --- raw prompts ----------------------------------------------------------------------------------

test_allows_raw_prompts_outside_production if {
	d := warden.decision with input as raw
	d.allow
	d.secrets == []
	d.redaction.mode == "tokenize"
}

test_denies_raw_prompts_in_production if {
	d := warden.decision with input as production(raw)
	not d.allow
	"raw (untemplated) prompts are not allowed in production" in d.reasons
}

test_allows_templated_prompts_in_production if {
	warden.decision.allow with input as production(base)
}

test_allows_listing_models_in_production if {
	i := object.union(production(raw), {"action": "models.list", "request": {"model": ""}})
	d := warden.decision with input as i
	d.allow
	"echo" in d.models
}

# --- models by sensitivity ----------------------------------------------------------------------

test_public_templates_get_the_broad_list if {
	d := warden.decision with input as with_template({"sensitivity": "public"})
	d.models == warden.models_by_sensitivity.public
	"echo" in d.models
	count(d.models) > count(warden.models_by_sensitivity.restricted)
}

test_restricted_templates_get_the_narrow_list if {
	d := warden.decision with input as as_service(restricted, "billing", "refund-worker")
	# gpt-4o is in the template's list but not cleared for restricted data.
	d.models == ["echo", "gpt-4o-mini"]
}

test_template_models_narrow_the_list if {
	d := warden.decision with input as with_template({"models": ["gpt-4o", "not-a-cleared-model"]})
	d.models == ["gpt-4o"]
}

test_denied_calls_get_no_models if {
	d := warden.decision with input as with_template({"retired": true})
	d.models == []
}

# --- redaction by sensitivity -------------------------------------------------------------------

test_public_redaction_masks if {
	r := warden.decision.redaction with input as with_template({"sensitivity": "public"})
	r.profile == "standard"
	r.mode == "mask"
	not r.reidentify
}

test_internal_redaction_tokenizes_and_reidentifies if {
	r := warden.decision.redaction with input as base
	r.profile == "standard"
	r.mode == "tokenize"
	r.reidentify
	not r.fail_open
}

test_restricted_redaction_is_strict_and_blocks_secrets if {
	d := warden.decision with input as as_service(restricted, "billing", "refund-worker")
	d.redaction.profile == "strict"
	d.redaction.mode == "tokenize"
	d.redaction.modes.SECRETS == "block"
	not d.redaction.reidentify
	d.max_tokens == 2048
	not d.audit.log_variables_names
}

# --- secrets per template -----------------------------------------------------------------------

test_grants_the_template_secret_refs if {
	d := warden.decision with input as base
	d.secrets == ["file:secrets/escalation-code"]
}

test_grants_no_secrets_when_denied if {
	d := warden.decision with input as as_service(base, "payments", "checkout")
	d.secrets == []
}

test_grants_only_the_template_own_refs if {
	d := warden.decision with input as with_template({"secret_refs": []})
	d.secrets == []
}
