/** Percentiles and load loops shared by the benchmarks. */
import { performance } from 'node:perf_hooks';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export interface LatencyResult {
  p50: number;
  p99: number;
  errors: number;
  count: number;
}

/**
 * Open-loop load at a fixed rate: one request every 1000/rps ms, scheduled against the clock so
 * a slow response does not slow the sender (coordinated omission would hide latency). Latency is
 * measured from the scheduled send time.
 */
export async function fixedRate(send: () => Promise<boolean>, rps: number, durationMs: number): Promise<LatencyResult> {
  const raw = await fixedRateRaw(send, rps, durationMs);
  return summarize(raw.latencies, raw.errors);
}

export function summarize(latencies: number[], errors: number): LatencyResult {
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, count: latencies.length };
}

/** The latencies (ms) of one fixed-rate run, unsorted, and the error count. */
export async function fixedRateRaw(send: () => Promise<boolean>, rps: number, durationMs: number): Promise<{ latencies: number[]; errors: number }> {
  const interval = 1000 / rps;
  const total = Math.floor((durationMs / 1000) * rps);
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // Ahead of schedule: measure from the actual send. Behind: from when it was due, so time spent
    // queued behind slow responses counts (no coordinated omission).
    const sentAt = Math.min(due, performance.now());
    pending.push(
      send().then(
        (ok) => {
          if (ok) latencies.push(performance.now() - sentAt);
          else errors++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(pending);
  return { latencies, errors };
}

/** Closed-loop maximum throughput: `concurrency` requests in flight until `count` or `maxMs`. */
export async function maxThroughput(
  send: () => Promise<boolean>,
  concurrency: number,
  count: number,
  maxMs: number,
): Promise<{ rps: number; errors: number; count: number }> {
  let started = 0;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  async function worker(): Promise<void> {
    while (started < count && performance.now() < deadline) {
      started++;
      try {
        if (await send()) done++;
        else errors++;
      } catch {
        errors++;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { rps: done / seconds, errors, count: done };
}
