/**
 * Principals are frozen, audiences included: one object serves every request of a caller (the
 * dev principal, a cached token's), stages only read it, and the policy input can key on it by
 * identity (policy/input.ts). A stage that tried to change one would throw, failing closed.
 */
import type { Principal } from '../pipeline/types.js';

/** `p` itself when it is frozen already, else a frozen copy. */
export function frozenPrincipal(p: Principal): Principal {
  if (Object.isFrozen(p) && Object.isFrozen(p.audiences)) return p;
  return Object.freeze({ ...p, audiences: Object.freeze(p.audiences.slice()) as string[] });
}
