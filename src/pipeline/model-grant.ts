/**
 * What a decision's `models` grants: `*` allows any model, otherwise exact names. One rule for the
 * decide stage (is this call's model allowed?) and for `GET /v1/models` (which configured models
 * may this caller use?), so the two cannot drift apart.
 */
export function modelAllowed(models: readonly string[], model: string): boolean {
  return models.includes(model) || models.includes('*');
}

/** The configured models a decision's `models` grants, in configuration order. */
export function grantedModels(models: readonly string[], configured: readonly string[]): readonly string[] {
  return configured.filter((m) => modelAllowed(models, m));
}
