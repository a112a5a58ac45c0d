/**
 * "The most recent approval" (policy input `template.approval`, audit `approval`) is picked by
 * instant: `at` may carry an offset or a space separator, and text order is not time order.
 */
import { describe, expect, it } from 'vitest';
import { approvalInstant, mostRecentApproval } from '../../src/pipeline/approvals.js';
import { governanceInstant } from '../../src/pipeline/instants.js';
import { retireInstant } from '../../src/templates/index.js';

const cases: Array<[string, Array<{ by: string; ticket: string; at?: string }>, string]> = [
  // 23:00-05:00 is 04:00Z the next day: later than 01:00Z, though it sorts first as text.
  ['an offset', [{ by: 'a', ticket: 'SEC-NEW', at: '2026-03-02T23:00:00-05:00' }, { by: 'a', ticket: 'SEC-OLD', at: '2026-03-03T01:00:00Z' }], 'SEC-NEW'],
  ['a space separator', [{ by: 'a', ticket: 'SEC-NEW', at: '2026-03-02 23:00Z' }, { by: 'a', ticket: 'SEC-OLD', at: '2026-03-02T01:00Z' }], 'SEC-NEW'],
  ['a lower-case t and z', [{ by: 'a', ticket: 'SEC-NEW', at: '2026-03-02t23:00z' }, { by: 'a', ticket: 'SEC-OLD', at: '2026-03-02T01:00Z' }], 'SEC-NEW'],
  ['a date and a date-time that day', [{ by: 'a', ticket: 'SEC-NEW', at: '2026-03-02T10:00Z' }, { by: 'a', ticket: 'SEC-OLD', at: '2026-03-02' }], 'SEC-NEW'],
  ['no at, then one with at', [{ by: 'a', ticket: 'SEC-NEW', at: '2020-01-01' }, { by: 'a', ticket: 'SEC-OLD' }], 'SEC-NEW'],
  ['equal instants: the last listed', [{ by: 'a', ticket: 'SEC-OLD', at: '2026-03-02T05:00Z' }, { by: 'a', ticket: 'SEC-NEW', at: '2026-03-02T00:00-05:00' }], 'SEC-NEW'],
  ['none with at: the last listed', [{ by: 'a', ticket: 'SEC-OLD' }, { by: 'a', ticket: 'SEC-NEW' }], 'SEC-NEW'],
];

describe('most recent approval', () => {
  for (const [name, approvals, want] of cases) {
    it(`by instant: ${name}`, () => {
      expect(mostRecentApproval(approvals)?.ticket).toBe(want);
    });
  }
  it('none: null', () => {
    expect(mostRecentApproval([])).toBeNull();
  });
});

describe('governance instants', () => {
  // One parser for retire_after and approvals: the space form of a year-50 date is year 50 in
  // both (Date.parse alone reads '0050-06-01 10:00Z' as 1950).
  const year50 = new Date('0050-06-01T10:00:00Z').getTime();
  it('read the space form and the ISO form of a date-time as one instant, years 0-99 included', () => {
    expect(governanceInstant('0050-06-01 10:00Z', 'start')).toBe(year50);
    expect(governanceInstant('0050-06-01T10:00:00Z', 'end')).toBe(year50);
    expect(retireInstant('0050-06-01 10:00Z')).toBe(year50);
    expect(approvalInstant('0050-06-01 10:00z')).toBe(year50);
  });
  it('take a date alone as the start (approvals) or the end (retirement) of that UTC day', () => {
    expect(governanceInstant('2026-03-02', 'start')).toBe(Date.UTC(2026, 2, 2));
    expect(retireInstant('2026-03-02')).toBe(Date.UTC(2026, 2, 3) - 1);
    expect(Number.isNaN(governanceInstant('tomorrow', 'start'))).toBe(true);
  });
});
