/**
 * "The most recent approval" of a template, shared by the policy input (`template.approval`) and
 * the audit record (`approval`), so the two can never name different tickets.
 */
import { governanceInstant } from './instants.js';
import type { Approval } from './types.js';

/** Epoch ms of an approval's `at` (a date is the start of that day, UTC); -Infinity without one. */
export function approvalInstant(at: string | undefined): number {
  if (at === undefined) return -Infinity;
  const t = governanceInstant(at, 'start');
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
