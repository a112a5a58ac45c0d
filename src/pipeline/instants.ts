/**
 * The instants of governance fields (`retire_after`, an approval's `at`): an ISO date, or a
 * date-time with a zone, as the template loader accepts them, including a space for the `T` and
 * lower-case `t`/`z`. Normalised to the ISO form before Date.parse, whose handling of other forms
 * is the engine's own (a space form reads year 50 as 1950). One parser, so the policy input, the
 * retirement check and the audit record can never read one text as two instants.
 */
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const LAST_MS_OF_DAY = 86_399_999;

/**
 * Epoch ms of `text`, or NaN when it is not such an instant. A date alone is the first or the
 * last millisecond of that day, UTC, as `dateOnly` says.
 */
export function governanceInstant(text: string, dateOnly: 'start' | 'end'): number {
  if (DATE_ONLY.test(text)) {
    const start = Date.parse(`${text}T00:00:00Z`);
    return dateOnly === 'start' ? start : start + LAST_MS_OF_DAY;
  }
  if (text.length < 11) return Number.NaN;
  return Date.parse(`${text.slice(0, 10)}T${text.slice(11)}`.replace(/z$/, 'Z'));
}
