/**
 * Latency of a model in onnxruntime: one row per execution provider × batch size × thread count, each with the
 * median, p90 and p99 of single runs, the mean, throughput and the process's peak memory.
 *
 * How a configuration is timed (`timeRuns`): tinybench calls `session.run` on the same synthetic feeds (see
 * `feeds.ts`) — first a warm-up whose runs are thrown away (onnxruntime allocates its buffers and picks kernels on
 * the first runs), then timed runs until both the time budget and the minimum number of runs are reached. If the
 * median is not yet stable — the 95% confidence interval of the median, from order statistics, wider than
 * `stability` of the median — more rounds are timed, up to `maxTime`. Spin-waiting is off in the Runner, so a
 * busy machine slows runs down rather than starving them.
 *
 * What cannot be measured becomes a row with `available: false` and the reason — a provider missing here, a model
 * whose batch dimension is fixed to another size, a session or run that onnxruntime refuses — never an exception:
 * a report keeps its other rows. Bad options (batch 0, an unknown provider) are the caller's mistake and throw.
 */
import { Bench } from 'tinybench';
import { OptionsError, expected, oneOf } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from '../onnx/io.js';
import { EXECUTION_PROVIDERS, probeProvider, Runner, type ExecutionProvider, type RunTensor } from '../onnx/runner.js';
import { syntheticFeeds } from './feeds.js';
import type { LatencyRow } from './schema.js';

/** How long and how often to time one configuration. Times in milliseconds. */
export interface TimingOptions {
  /** Time budget of the timed runs (default 1000). */
  time?: number;
  /** Minimum number of timed runs, whatever the time (default 10). */
  iterations?: number;
  /** Warm-up time whose runs are not counted (default: a quarter of `time`, at most 250). */
  warmupTime?: number;
  /** Minimum number of warm-up runs (default 3). */
  warmupIterations?: number;
  /**
   * The median is stable when the half-width of its 95% confidence interval is at most this fraction of it
   * (default 0.02); until then more rounds of `time` are timed, up to `maxTime`.
   */
  stability?: number;
  /** Longest time spent on timed runs, stability rounds included (default 3 × `time`). */
  maxTime?: number;
}

/** What `timeRuns` measured. */
export interface Timing {
  /** Every timed run, in ms, sorted ascending. */
  samplesMs: number[];
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Half-width of the 95% confidence interval of the median, in ms (order statistics; 0 with too few runs). */
  p50HalfWidthMs: number;
  /** Largest resident set size of the process seen before, during and after the runs, in bytes. */
  peakRssBytes: number;
}

/**
 * The q-quantile (0..1) of ascending samples, interpolating linearly between order statistics (as numpy's
 * default and tinybench do).
 *
 * @example
 * ```ts
 * quantile([1, 2, 3, 4], 0.5); // 2.5
 * ```
 */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** Half-width of a distribution-free 95% confidence interval of the median: order statistics n/2 ± 0.98·√n. */
function medianHalfWidth(sorted: readonly number[]): number {
  const n = sorted.length;
  if (n < 6) return 0;
  const k = 0.98 * Math.sqrt(n);
  const lo = Math.max(0, Math.floor(n / 2 - k)), hi = Math.min(n - 1, Math.ceil(n / 2 + k));
  return (sorted[hi]! - sorted[lo]!) / 2;
}

function checkTiming(o: TimingOptions): void {
  const nonNegative = (name: keyof TimingOptions, integer = false) => {
    const v = o[name];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0 && (!integer || Number.isInteger(v)))) {
      throw new OptionsError(expected(`a non-negative ${integer ? 'integer' : 'number'}`, name, v));
    }
  };
  nonNegative('time');
  nonNegative('iterations', true);
  nonNegative('warmupTime');
  nonNegative('warmupIterations', true);
  nonNegative('stability');
  nonNegative('maxTime');
}

/**
 * Times an async function with tinybench: warm-up, then timed calls until the time budget and the minimum count
 * are both reached, and more until the median is stable (see `TimingOptions`). Errors thrown by `run` propagate.
 *
 * @example
 * ```ts
 * const t = await timeRuns(() => runner.run(feeds), { time: 500 });
 * console.log(t.p50Ms, t.p99Ms, t.samplesMs.length);
 * ```
 */
export async function timeRuns(run: () => Promise<unknown>, options: TimingOptions = {}): Promise<Timing> {
  checkTiming(options);
  const time = options.time ?? 1000;
  const maxTime = Math.max(time, options.maxTime ?? 3 * time);
  const stability = options.stability ?? 0.02;
  let peakRss = process.memoryUsage.rss();
  const sampleRss = () => {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) peakRss = rss;
  };
  const samples: number[] = [];
  let spent = 0;
  for (let round = 0; ; round++) {
    const bench = new Bench({
      time,
      iterations: round === 0 ? (options.iterations ?? 10) : 1,
      // only the first round warms up: later rounds continue a warm session
      warmup: round === 0,
      warmupTime: options.warmupTime ?? Math.min(250, time / 4),
      warmupIterations: options.warmupIterations ?? 3,
      retainSamples: true,
      throws: true,
    });
    // async declared, so tinybench makes no exploratory call; RSS is read between runs, outside the timed window
    bench.add('run', run, { async: true, afterEach: sampleRss });
    await bench.run();
    const result = bench.tasks[0]!.result;
    if (result.state === 'errored') throw result.error;
    if (result.state !== 'completed') throw new Error(`tinybench stopped in state "${result.state}"`);
    const got = result.latency.samples ?? [];
    samples.push(...got);
    spent += result.totalTime;
    samples.sort((a, b) => a - b);
    const p50 = quantile(samples, 0.5);
    if (medianHalfWidth(samples) <= stability * p50 || spent >= maxTime || got.length === 0) break;
  }
  sampleRss();
  return {
    samplesMs: samples,
    p50Ms: quantile(samples, 0.5),
    p90Ms: quantile(samples, 0.9),
    p99Ms: quantile(samples, 0.99),
    meanMs: samples.reduce((s, x) => s + x, 0) / samples.length,
    p50HalfWidthMs: medianHalfWidth(samples),
    peakRssBytes: peakRss,
  };
}

/** Options of `measureLatency`: which configurations, and how long to time each. */
export interface LatencyOptions extends TimingOptions {
  /** Execution providers (default `['cpu']`). */
  ep?: ExecutionProvider[];
  /** Batch sizes (default `[1]`). */
  batch?: number[];
  /** Intra-op thread counts; 0 is onnxruntime's choice (default `[0]`). */
  threads?: number[];
  /** Sizes of symbolic dimensions other than the batch, by name (`{ sequence: 128 }`). */
  dims?: Record<string, number>;
  /** Seed of the synthetic inputs (default 0). */
  seed?: number;
  /** Called before each configuration (`done` of `total` finished) and once at the end. */
  onProgress?: (done: number, total: number, label: string) => void;
}

function checkList<T>(name: string, list: readonly T[] | undefined, ok: (v: T) => boolean, what: string): void {
  if (list === undefined) return;
  if (!Array.isArray(list) || list.length === 0) throw new OptionsError(expected(`a non-empty list of ${what}`, name, list));
  for (const v of list) if (!ok(v)) throw new OptionsError(expected(what, name, v));
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * Measures a model's latency for every execution provider × batch size × thread count, in that order. One session
 * is made per provider and thread count and serves every batch size.
 *
 * Give a model file's path for a model with external data: onnxruntime reads the data files beside it.
 *
 * @example
 * ```ts
 * const rows = await measureLatency('fixtures/fmnist-cnn.onnx', { ep: ['cpu', 'webgpu'], batch: [1, 32], threads: [1, 0] });
 * for (const r of rows) console.log(r.ep, r.batch, r.threads, r.available ? r.p50Ms : r.reason);
 * ```
 */
export async function measureLatency(model: Model | string, options: LatencyOptions = {}): Promise<LatencyRow[]> {
  checkTiming(options);
  checkList('ep', options.ep, (e) => EXECUTION_PROVIDERS.includes(e), `an execution provider ${oneOf(EXECUTION_PROVIDERS)}`);
  checkList('batch', options.batch, (b) => Number.isInteger(b) && b >= 1, 'a positive integer');
  checkList('threads', options.threads, (t) => Number.isInteger(t) && t >= 0, 'a non-negative integer (0: onnxruntime’s choice)');
  const eps: ExecutionProvider[] = [...new Set<ExecutionProvider>(options.ep ?? ['cpu'])];
  const batches = [...new Set(options.batch ?? [1])];
  const threadCounts = [...new Set(options.threads ?? [0])];
  const ir = typeof model === 'string' ? await loadModel(model) : model;
  const total = eps.length * batches.length * threadCounts.length;
  let done = 0;
  const rows: LatencyRow[] = [];
  const unavailable = (ep: string, batch: number, threads: number, reason: string) => {
    rows.push({ available: false, ep, batch, threads, reason });
    done++;
  };

  // the feeds of each batch size are made once and shared by every provider and thread count
  const feedsByBatch = new Map<number, Record<string, RunTensor> | string>();
  const feedsFor = (batch: number) => {
    if (!feedsByBatch.has(batch)) {
      try {
        feedsByBatch.set(batch, syntheticFeeds(ir, { batch, dims: options.dims, seed: options.seed }));
      } catch (e) {
        feedsByBatch.set(batch, firstLine(e));
      }
    }
    return feedsByBatch.get(batch)!;
  };

  for (const ep of eps) {
    const probe = await probeProvider(ep);
    for (const threads of threadCounts) {
      const label = (batch: number) => `${ep} batch ${batch} threads ${threads === 0 ? 'auto' : threads}`;
      if (!probe.available) {
        for (const batch of batches) unavailable(ep, batch, threads, firstLine(probe.reason));
        continue;
      }
      let runner: Runner;
      try {
        runner = await Runner.create(model, { ep, threads: threads === 0 ? undefined : threads });
      } catch (e) {
        for (const batch of batches) unavailable(ep, batch, threads, firstLine(e));
        continue;
      }
      try {
        for (const batch of batches) {
          options.onProgress?.(done, total, label(batch));
          const feeds = feedsFor(batch);
          if (typeof feeds === 'string') {
            unavailable(ep, batch, threads, feeds);
            continue;
          }
          let t: Timing;
          try {
            t = await timeRuns(() => runner.run(feeds), options);
          } catch (e) {
            unavailable(ep, batch, threads, firstLine(e));
            continue;
          }
          rows.push({
            available: true,
            ep,
            batch,
            threads,
            p50Ms: t.p50Ms,
            p90Ms: t.p90Ms,
            p99Ms: t.p99Ms,
            meanMs: t.meanMs,
            samples: t.samplesMs.length,
            throughput: (batch * 1000) / t.p50Ms,
            peakRssBytes: t.peakRssBytes,
          });
          done++;
        }
      } finally {
        await runner.release();
      }
    }
  }
  options.onProgress?.(done, total, 'done');
  // measured provider by provider (one session per provider and thread count), listed as ep × batch × threads
  const order = (r: LatencyRow) => [(eps as string[]).indexOf(r.ep), batches.indexOf(r.batch), threadCounts.indexOf(r.threads)];
  return rows.sort((a, b) => {
    const x = order(a), y = order(b);
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
}
