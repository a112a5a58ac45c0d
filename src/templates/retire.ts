/**
 * Retirement: a template may not run once `now > retire_after`. A date without a time
 * (`2027-06-30`) means "through the end of that day, UTC", which is what people mean when they
 * write a date in a governance field.
 */
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;
const parsed = new Map<string, number>();

/** Epoch ms after which a template with this `retire_after` is retired (NaN when unparseable). */
export function retireInstant(retireAfter: string): number {
  let t = parsed.get(retireAfter);
  if (t === undefined) {
    t = DATE_ONLY.test(retireAfter) ? Date.parse(`${retireAfter}T00:00:00Z`) + DAY_MS - 1 : Date.parse(retireAfter);
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
