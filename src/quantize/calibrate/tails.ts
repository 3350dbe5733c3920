/**
 * Exact percentiles from the tails: the `percentile` range only depends on the few most extreme values of each
 * side (99.999 keeps all but 0.0005 % beyond each end), so an observer that keeps just the k largest and the k
 * smallest values seen — k = ⌈tail·(N − 1)⌉ + 2 for the N values calibration will see — gives the same
 * quantiles as sorting everything (numpy's default linear interpolation), with memory that grows by 8 bytes per
 * 100 000 values observed rather than with every value.
 *
 * Its reason to exist is speed: onnxruntime's TopK finds each batch's tails inside the graph (see `calibrate`),
 * so only k values per tensor and batch leave onnxruntime, where the histogram observer needs every value copied
 * out and binned in JavaScript (3–4× the inference time on small CNNs). The histogram observer remains for the
 * symmetric variant, for tensors of unknown size, and as the general-purpose `PercentileObserver`.
 *
 * @example
 * ```ts
 * const o = new TailObserver({ percentile: 99.9, expected: 1_000_000 });
 * o.update(values);                 // or o.updateTails(topDescending, bottomAscending, count) from onnxruntime
 * o.range();                        // { min: p0.05, max: p99.95 }
 * ```
 */
import { EvaluationError, OptionsError, expected } from '../../errors.js';
import type { TensorRange } from '../types.js';
import { DEFAULT_PERCENTILE, type Observer } from './observers.js';

/** How many values of each tail `TailObserver` must keep for `n` values at `percentile`. */
export function tailLength(percentile: number, n: number): number {
  const tail = (100 - percentile) / 200;
  return Math.ceil(tail * Math.max(n - 1, 0)) + 2;
}

export class TailObserver implements Observer {
  readonly method = 'percentile' as const;
  readonly percentile: number;
  /** Values kept per tail. */
  readonly capacity: number;
  count = 0;
  nonFinite = 0;
  /** Set for a tensor known to be ≥ 0: only the top tail is kept and the range starts at 0 (see `range`). */
  readonly nonNegative: boolean;
  /** The largest values so far, descending. */
  #top: Float32Array = new Float32Array(0);
  /** The smallest values so far, ascending. */
  #bottom: Float32Array = new Float32Array(0);

  /**
   * `expected`: how many values calibration will observe in all (sizes the tails; more is checked in `range`).
   * `nonNegative`: the values are known to be ≥ 0 (a Relu's output, say), so the lower quantile is ≥ 0 and, since
   * the quantizer widens every range to include 0, cannot matter: the bottom tail is not kept and `range().min` is 0.
   */
  constructor(options: { percentile?: number; expected: number; nonNegative?: boolean }) {
    const p = options.percentile ?? DEFAULT_PERCENTILE;
    if (typeof p !== 'number' || !(p >= 50 && p <= 100)) throw new OptionsError(expected('a number in [50, 100]', 'percentile', p));
    if (!Number.isSafeInteger(options.expected) || options.expected < 1) throw new OptionsError(expected('a positive integer', 'expected', options.expected));
    this.percentile = p;
    this.nonNegative = options.nonNegative ?? false;
    this.capacity = tailLength(p, options.expected);
  }

  get min(): number {
    if (this.nonNegative) return this.count ? 0 : Infinity;
    return this.#bottom.length ? this.#bottom[0]! : Infinity;
  }

  get max(): number {
    return this.#top.length ? this.#top[0]! : -Infinity;
  }

  /** Adds a batch of values (NaN and ±Infinity skipped and counted): the path for batches onnxruntime could not reduce. */
  update(data: Float32Array): void {
    const finite = new Float32Array(data.length);
    let n = 0;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      if (x - x === 0) finite[n++] = x;
    }
    this.nonFinite += data.length - n;
    const sorted = finite.subarray(0, n).sort();
    const k = Math.min(this.capacity, n);
    this.updateTails(sorted.slice(n - k).reverse(), sorted.slice(0, k), n);
  }

  /**
   * Adds a batch known by its `count` finite values and its tails: `top` its largest values descending, `bottom`
   * its smallest ascending, each min(count, capacity) long (what TopK returns) — or shorter when the batch had fewer.
   * `bottom` is ignored, and may be left out, when the observer is `nonNegative`.
   */
  updateTails(top: Float32Array, bottom: Float32Array | undefined, count: number): void {
    if (count === 0) return;
    this.count += count;
    this.#top = merge(this.#top, top, this.capacity, (a, b) => a > b);
    if (this.nonNegative) return;
    if (!bottom) throw new EvaluationError('TailObserver.updateTails needs the bottom tail unless the observer is nonNegative');
    this.#bottom = merge(this.#bottom, bottom, this.capacity, (a, b) => a < b);
  }

  range(): TensorRange {
    if (this.count === 0) throw new EvaluationError('The percentile observer has seen no finite values: no range');
    const tail = (100 - this.percentile) / 200;
    return { min: this.nonNegative ? 0 : this.#quantile(tail), max: this.#quantile(1 - tail) };
  }

  retainedBytes(): number {
    return (this.nonNegative ? 4 : 8) * this.capacity;
  }

  /** The q-quantile with linear interpolation between order statistics (numpy's default). */
  #quantile(q: number): number {
    const n = this.count;
    const t = q * (n - 1);
    const lo = Math.floor(t), hi = Math.min(lo + 1, n - 1);
    const a = this.#order(lo), b = this.#order(hi);
    return t > lo ? a + (t - lo) * (b - a) : a;
  }

  /** The i-th smallest value (0-based), from whichever tail holds it. */
  #order(i: number): number {
    const n = this.count;
    if (i < this.#bottom.length) return this.#bottom[i]!;
    if (n - 1 - i < this.#top.length) return this.#top[n - 1 - i]!;
    // only when calibration saw more values than it was sized for (a tensor whose size per sample changed)
    throw new EvaluationError(
      `The percentile observer kept ${this.capacity} values per tail, sized for fewer values than the ${n} it saw: ` +
        'calibrate with an explicit sample count, or use the histogram observer',
    );
  }
}

/** The first `k` of two sorted arrays merged (`before(a, b)`: a comes first). */
function merge(a: Float32Array, b: Float32Array, k: number, before: (x: number, y: number) => boolean): Float32Array {
  const out = new Float32Array(Math.min(k, a.length + b.length));
  let i = 0, j = 0;
  for (let o = 0; o < out.length; o++) out[o] = j >= b.length || (i < a.length && !before(b[j]!, a[i]!)) ? a[i++]! : b[j++]!;
  return out;
}
