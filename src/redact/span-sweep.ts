/**
 * Span relations between two lists of findings, as the scanner merges its readings (the text as
 * written, the spaced view, the decoded windows). A request holds up to a finding every few
 * characters, so a check of every pair would make a 1 MB body cost seconds of CPU: each relation
 * is one sweep over both lists sorted by start (n log n for the sorts). Inputs are copied, not
 * reordered; results keep the order of the first list.
 */
import type { Finding } from './types.js';

const byStart = (a: Finding, b: Finding): number => a.start - b.start || a.end - b.end;

/** The findings of `adds` that lie inside no finding of `base`. */
export function notContained(adds: readonly Finding[], base: readonly Finding[]): Finding[] {
  if (base.length === 0 || adds.length === 0) return adds.slice();
  const sortedBase = base.slice().sort(byStart);
  const order = adds.slice().sort(byStart);
  const inside = new Set<Finding>();
  // The base findings that start at or before f.start, swept in: the one of them that reaches
  // furthest contains f if any does.
  let k = 0;
  let reach = -1;
  for (const f of order) {
    while (k < sortedBase.length && sortedBase[k]!.start <= f.start) reach = Math.max(reach, sortedBase[k++]!.end);
    if (reach >= f.end) inside.add(f);
  }
  return inside.size === 0 ? adds.slice() : adds.filter((f) => !inside.has(f));
}

/** The findings of `adds` that overlap no finding of `base`. */
export function notOverlapping(adds: readonly Finding[], base: readonly Finding[]): Finding[] {
  if (base.length === 0 || adds.length === 0) return adds.slice();
  const sortedBase = base.slice().sort(byStart);
  const order = adds.slice().sort((a, b) => a.end - b.end);
  const hit = new Set<Finding>();
  // The base findings that start before f.end, swept in: the one of them that reaches furthest
  // overlaps f if any does.
  let k = 0;
  let reach = -1;
  for (const f of order) {
    while (k < sortedBase.length && sortedBase[k]!.start < f.end) reach = Math.max(reach, sortedBase[k++]!.end);
    if (reach > f.start) hit.add(f);
  }
  return hit.size === 0 ? adds.slice() : adds.filter((f) => !hit.has(f));
}

/**
 * The holders (see Finding.holder) that hold one of `findings` and more text besides: a value
 * that is only the card is the card's finding.
 */
export function holdersInUse(holders: readonly Finding[], findings: readonly Finding[]): Finding[] {
  if (holders.length === 0 || findings.length === 0) return [];
  const sorted = findings.slice().sort(byStart);
  // minEnd[i]: the smallest end of sorted[i..]; a holder holds a finding that starts after its
  // own start when the one of those that ends first ends inside it.
  const minEnd = new Array<number>(sorted.length + 1);
  minEnd[sorted.length] = Infinity;
  for (let i = sorted.length - 1; i >= 0; i--) minEnd[i] = Math.min(sorted[i]!.end, minEnd[i + 1]!);
  const order = holders.slice().sort(byStart);
  const used = new Set<Finding>();
  let atOrAfter = 0;
  let after = 0;
  for (const h of order) {
    while (atOrAfter < sorted.length && sorted[atOrAfter]!.start < h.start) atOrAfter++;
    if (after < atOrAfter) after = atOrAfter;
    while (after < sorted.length && sorted[after]!.start <= h.start) after++;
    // Same start: the shortest such finding (first, as ends sort ascending) must end before h.
    const sameStart = atOrAfter < after && sorted[atOrAfter]!.end < h.end;
    if (sameStart || minEnd[after]! <= h.end) used.add(h);
  }
  return holders.filter((h) => used.has(h));
}

/**
 * `base` with `adds` merged in: an added finding inside a finding of `base` is left out, and a
 * cluster of overlapping findings where an added one partly overlaps one of `base` becomes one
 * finding over the cluster's span (the entity and score of the highest-scored, `base` first on a
 * tie). Neither reading then wins an overlap and leaves the rest of the other's value in clear.
 * Clusters are swept as resolveOverlaps does, and only the members of one are compared.
 */
export function mergeJoined(base: readonly Finding[], adds: readonly Finding[]): Finding[] {
  const extra = notContained(adds, base);
  if (extra.length === 0) return base.slice();
  const added = new Set(extra);
  const all = base.concat(extra).sort(byStart);
  const out: Finding[] = [];
  let cluster: Finding[] = [];
  let clusterEnd = -1;
  for (const f of all) {
    if (f.start >= clusterEnd) {
      joinCluster(cluster, added, out);
      cluster = [];
      clusterEnd = f.end;
    } else if (f.end > clusterEnd) clusterEnd = f.end;
    cluster.push(f);
  }
  joinCluster(cluster, added, out);
  return out;
}

function joinCluster(cluster: readonly Finding[], added: ReadonlySet<Finding>, out: Finding[]): void {
  const partial = cluster.length > 1 && cluster.some((a) => added.has(a) && cluster.some((b) => !added.has(b) && a.start < b.end && b.start < a.end));
  if (!partial) {
    for (const f of cluster) out.push(f);
    return;
  }
  let best = cluster[0]!;
  let end = best.end;
  for (const f of cluster) {
    if (f.score > best.score || (f.score === best.score && added.has(best) && !added.has(f))) best = f;
    end = Math.max(end, f.end);
  }
  out.push({ entity: best.entity, start: cluster[0]!.start, end, score: best.score });
}
