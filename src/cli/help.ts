/** Usage texts, one per command: `warden <command> --help` prints these. */

export const MAIN_HELP = `warden — a policy-enforcing sidecar for LLM calls

Usage:
  warden <command> [options]

Commands:
  serve     Run the sidecar (HTTP, gRPC and admin listeners)
  render    Dry run: print the decision and the prompt that would go upstream (secrets masked)
  policy    Policy tools (eval, test, check)
  redact    Redact PII from text (the redaction engine on the command line)
  audit     Audit log tools (verify the hash chain)
  templates Template tools (lint PATH...: check template files without a server)

Options:
  -h, --help       Show help (also: warden <command> --help)
  -v, --version    Print the version

Run 'npm start' for the embedded default: warden serve --config deploy/local/warden.yaml
`;

export const SERVE_HELP = `Usage: warden serve --config FILE

Runs Warden: the OpenAI-compatible HTTP listener, the gRPC listener and the admin listener
(/metrics, /healthz, /readyz). Templates and policies reload on file change and on SIGHUP;
SIGTERM/SIGINT drain in-flight requests within limits.shutdown_grace_ms, flush the audit log
and exit 0; a second one while Warden is still starting exits at once (128 + the signal).

Options:
  -c, --config FILE   The YAML config file (required)
  -h, --help          Show this help

Environment overrides:
  WARDEN_HTTP_LISTEN, WARDEN_GRPC_LISTEN, WARDEN_ADMIN_LISTEN   host:port of each listener
  WARDEN_LOG_LEVEL                                              fatal|error|warn|info|debug|trace|silent
`;

export const RENDER_HELP = `Usage: warden render --config FILE --template ID@VERSION [--var NAME=VALUE ... | --vars FILE] [options]

Dry run: authenticates as a principal, asks the policy, resolves the granted secrets, renders
the template and redacts it, then prints the decision and the prompt that would be sent
upstream, with secret values masked as [SECRET_VALUE]. Nothing is sent upstream.

Options:
  -c, --config FILE          The YAML config file (required)
  -t, --template ID@VERSION  The template (without @VERSION: the highest version)
      --var NAME=VALUE       A template variable (repeatable)
      --vars FILE            Variables from a JSON object {"NAME": value, ...} in FILE
                             (- reads stdin): values stay out of ps and shell history
  -m, --model MODEL          The model to ask for (default: the template's first model the config routes)
  -p, --principal NS/SA      Act as this Kubernetes service account
                             (default: the config's dev principal; required
                             when the config has no dev method)
      --json                 Print one JSON object instead of text
  -h, --help                 Show this help

A variable takes one value: one given twice (--var twice, a name repeated in the
--vars document, or in both) is a usage error naming it, never one value winning.

Exit codes: 0 allowed and rendered, 1 refused (the reason is printed), 2 usage error.
`;

