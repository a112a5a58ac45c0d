/**
 * "The most recent approval" of a template, shared by the policy input (`template.approval`) and
 * the audit record (`approval`), so the two can never name different tickets.
 */
import type { Approval } from './types.js';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Epoch ms of an approval's `at` (validated at load: an ISO date, or a date-time with a zone);
 * -Infinity without one. A date is the start of that day, UTC. The separator and zone letter are
 * normalised first: the loader accepts `2026-03-02 23:00Z` and `t`/`z`, which Date.parse need not.
 */
export function approvalInstant(at: string | undefined): number {
  if (at === undefined) return -Infinity;
  const iso = DATE_ONLY.test(at) ? `${at}T00:00:00Z` : `${at.slice(0, 10)}T${at.slice(11)}`.replace(/z$/, 'Z');
  const t = Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
}

/**
 * The approval with the latest `at` instant (offsets compared as times, not as text); among equal
 * instants, or when none has an `at`, the last listed.
 */
export function mostRecentApproval(approvals: readonly Approval[]): Approval | null {
  let best: Approval | null = null;
  let bestAt = -Infinity;
  for (const a of approvals) {
    const at = approvalInstant(a.at);
    if (!best || at >= bestAt) {
      best = a;
      bestAt = at;
    }
  }
  return best;
}
