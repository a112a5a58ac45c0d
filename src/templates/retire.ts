/**
 * Retirement: a template may not run once `now > retire_after`. A date without a time
 * (`2027-06-30`) means "through the end of that day, UTC", which is what people mean when they
 * write a date in a governance field.
 */
import { governanceInstant } from '../pipeline/instants.js';

const parsed = new Map<string, number>();

/** Epoch ms after which a template with this `retire_after` is retired (NaN when unparseable). */
export function retireInstant(retireAfter: string): number {
  let t = parsed.get(retireAfter);
  if (t === undefined) {
    t = governanceInstant(retireAfter, 'end');
    if (parsed.size > 10_000) parsed.clear();
    parsed.set(retireAfter, t);
  }
  return t;
}

/** True when the template is past its `retire_after`. An unparseable date counts as retired (fail closed). */
export function isRetired(template: { retire_after?: string | undefined }, nowMs: number): boolean {
  if (template.retire_after === undefined) return false;
  const t = retireInstant(template.retire_after);
  return Number.isNaN(t) || nowMs > t;
}
