/**
 * Kubernetes names as the API server allows them, the same rules the config applies to
 * `kubernetes.namespaces` and `dev.principal` (config/schema.ts): a principal's namespace or
 * service account that no cluster could hold would match nothing a policy author can write, or
 * worse, something they did not mean. Shared (here in pipeline/, not in a stage) by the identity
 * stage and the k8s secret store, which names the namespaces a template may read from.
 */
const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

/** A namespace name: a DNS-1123 label (at most 63 lower-case letters, digits and `-`). */
export function isNamespaceName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 63 && DNS1123_LABEL.test(v);
}

/** A service account or pod name: a DNS-1123 subdomain (labels separated by `.`, at most 253). */
export function isSubdomainName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 253 && v.split('.').every((label) => DNS1123_LABEL.test(label));
}
