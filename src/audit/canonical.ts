/**
 * Canonical JSON lives with the pipeline contracts (the forward stage serialises the outbound
 * prompt with it once and the audit stage reuses that text for the prompt HMAC); re-exported here
 * for the audit module's own imports.
 */
export { canonicalJson, canonicalJsonMerged, referenceCanonicalJson } from '../pipeline/canonical-json.js';
