/**
 * Counters and histograms for the request hot path, exposed through a prom-client Registry.
 *
 * prom-client resolves labels on every `inc`/`observe`, even through a `labels(...)` child: it
 * validates them, hashes the label object and looks buckets up by their stringified bound. A
 * request makes about fifteen observations (one per stage, request, upstream, decision, audit),
 * which cost more CPU than several stages. Here a series is resolved once (`series(...)`) and an
 * observation is a bucket scan and two additions. The registry reads the series at scrape time
 * through the metric interface prom-client itself uses (`get()` → name, help, type, values), so
 * the exposition text is the same as with prom-client's own Counter and Histogram.
 */
import type { Registry } from 'prom-client';

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  /** Histogram series labels: the registry writes them after its default labels (as for prom-client's Histogram). */
  sharedLabels?: Record<string, string>;
  metricName?: string;
}

interface MetricObject {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** What Registry.registerMetric reads from a metric. */
interface CollectableMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<MetricObject>;
  reset(): void;
}

export interface FastMetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: Registry[];
}

/** One label combination of a counter, resolved once. */
export class CounterSeries {
  value = 0;
  touched = false;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(n = 1): void {
    this.value += n;
    this.touched = true;
  }
}

/** One label combination of a histogram, resolved once. */
export class HistogramSeries {
  /** Count per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return; // prom-client throws here; a metric must not fail a request
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count++;
  }
}

function labelsOf<L extends string>(names: readonly L[], values: readonly string[]): Record<string, string> {
  if (values.length !== names.length) throw new Error(`expected ${names.length} label values, got ${values.length}`);
  const labels: Record<string, string> = {};
  names.forEach((n, i) => (labels[n] = values[i] as string));
  return labels;
}

abstract class FastMetric<L extends string, S> implements CollectableMetric {
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly L[];
  protected readonly all = new Map<string, S>();

  constructor(opts: FastMetricOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames;
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  protected abstract create(labels: Record<string, string>): S;

  /** The series for these label values (in `labelNames` order); resolve it once and keep it. */
  series(...values: string[]): S {
    const key = values.join('\u0000');
    let s = this.all.get(key);
    if (!s) {
      s = this.create(labelsOf(this.labelNames, values));
      this.all.set(key, s);
    }
    return s;
  }

  abstract get(): Promise<MetricObject>;
  abstract reset(): void;
}

export class FastCounter<L extends string> extends FastMetric<L, CounterSeries> {
  readonly type = 'counter' as const;

  protected create(labels: Record<string, string>): CounterSeries {
    return new CounterSeries(labels);
  }

  get(): Promise<MetricObject> {
    const values: MetricValue[] = [];
    for (const s of this.all.values()) if (s.touched) values.push({ value: s.value, labels: { ...s.labels } });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  reset(): void {
    for (const s of this.all.values()) {
      s.value = 0;
      s.touched = false;
    }
  }
}

export class FastHistogram<L extends string> extends FastMetric<L, HistogramSeries> {
  readonly type = 'histogram' as const;
  private readonly bounds: readonly number[];

  constructor(opts: FastMetricOptions<L> & { buckets: readonly number[] }) {
    super(opts);
    this.bounds = [...opts.buckets].sort((a, b) => a - b);
  }

  protected create(labels: Record<string, string>): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }

  /** For the text exposition: series labels as shared labels, so they follow the default labels. */
  getForPromString(): Promise<MetricObject> {
    const values: MetricValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.all.values()) {
      if (s.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({ value: acc, labels: { le: this.bounds[i] as number }, sharedLabels: { ...s.labels }, metricName: bucketName });
      }
      values.push({ value: s.count, labels: { le: '+Inf' }, sharedLabels: { ...s.labels }, metricName: bucketName });
      values.push({ value: s.sum, labels: {}, sharedLabels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: {}, sharedLabels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** For JSON export and cluster aggregation: all labels in one object. */
  async get(): Promise<MetricObject> {
    const data = await this.getForPromString();
    for (const v of data.values) {
      v.labels = { ...v.labels, ...v.sharedLabels };
      delete v.sharedLabels;
    }
    return data;
  }

  reset(): void {
    for (const s of this.all.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
