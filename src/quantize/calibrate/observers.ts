/**
 * Observers: one per calibration method, each a plain class fed one tensor's values batch after batch
 * (`update`) that reports a range at any time (`range`). They keep a fixed amount of memory whatever the number
 * of batches (`retainedBytes`), skip NaN and ±Infinity (counted in `nonFinite`), and do no allocation per
 * element: one pass per batch, checking four values at a time against the extremes so far (minmax), and binning
 * them too (the histogram methods; see `histogram.ts`).
 *
 * | method | observer | range |
 * |---|---|---|
 * | `minmax` | `MinMaxObserver` | min and max over everything; or, with `movingAverage` c, per update m ← m + c·(batch − m) |
 * | `percentile` | `PercentileObserver` | [p_low, p_high] with (100 − p)/2 % of values beyond each; `symmetric`: ±(p-th percentile of \|x\|) |
 * | `entropy` | `EntropyObserver` | ±(KL-optimal threshold over the \|x\| histogram, 128 levels, exact zeros left out) |
 * | `mse` | `MseObserver` | the range minimising expected 8-bit squared error |
 *
 * Every range lies within the observed [min, max]: a clipping threshold beyond the data is cut to the data.
 */
import { EvaluationError, OptionsError, expected } from '../../errors.js';
import type { CalibrationMethod, TensorRange } from '../types.js';
import { Histogram, entropyThreshold, extremes, mseRange } from './histogram.js';

/** What every observer does. */
export interface Observer {
  readonly method: CalibrationMethod;
  /** Adds a batch of values (NaN and ±Infinity are skipped and counted). */
  update(data: Float32Array): void;
  /** The range so far; throws an EvaluationError when no finite value was seen. */
  range(): TensorRange;
  /** Bytes of state kept between updates; the same after 1 batch or 10⁶. */
  retainedBytes(): number;
  /** Finite values seen. */
  readonly count: number;
  /** NaN and ±Infinity values seen (and skipped). */
  readonly nonFinite: number;
  /** Smallest and largest finite value seen (Infinity and −Infinity before any). */
  readonly min: number;
  readonly max: number;
}

/** Options of the observers; each takes the ones that concern it. */
export interface ObserverOptions {
  /** minmax: moving-average min/max; `true` means the constant 0.01. */
  movingAverage?: boolean | number;
  /** percentile: the percentage of values kept inside the range (default 99.999). */
  percentile?: number;
  /** percentile: a range symmetric about 0 from the percentile of |x| (default false: each side separately). */
  symmetric?: boolean;
  /** Histogram bins (default 2048). */
  bins?: number;
  /** entropy: quantized levels of |x| (default 128, for 8-bit types). */
  levels?: number;
  /** entropy: leave exact zeros out of the histogram (default true; see EntropyObserver). */
  skipZeros?: boolean;
  /** mse: bits of the uniform quantizer (default 8). */
  bits?: number;
}

/** Default moving-average constant (PyTorch's MovingAverageMinMaxObserver and onnxruntime use 0.01). */
export const DEFAULT_AVERAGING_CONSTANT = 0.01;
export const DEFAULT_BINS = 2048;
export const DEFAULT_PERCENTILE = 99.999;

// ---------------------------------------------------------------------------------------------------------------
// Checks

function noValues(method: string): EvaluationError {
  return new EvaluationError(`The ${method} observer has seen no finite values: no range`);
}

function checkBins(bins: number | undefined, least = 2): number {
  const b = bins ?? DEFAULT_BINS;
  if (!Number.isSafeInteger(b) || b < least || b > 1 << 24) throw new OptionsError(expected(`an integer in [${least}, 16777216]`, 'bins', bins));
  return b;
}

// ---------------------------------------------------------------------------------------------------------------
// minmax

/**
 * Min and max, or their moving averages: with constant c, the first batch sets them and each later batch moves
 * them by c·(batch min − min) and c·(batch max − max) (PyTorch's MovingAverageMinMaxObserver). The average is per
 * `update`, so it depends on the batch size.
 *
 * @example
 * ```ts
 * const o = new MinMaxObserver({ movingAverage: true });
 * o.update(new Float32Array([-1, 2]));
 * o.update(new Float32Array([0, 4]));
 * o.range(); // { min: -0.99, max: 2.02 }
 * ```
 */
export class MinMaxObserver implements Observer {
  readonly method = 'minmax' as const;
  /** Moving-average constant, or 0 for plain min/max. */
  readonly averagingConstant: number;
  count = 0;
  nonFinite = 0;
  min = Infinity;
  max = -Infinity;
  #avgMin = 0;
  #avgMax = 0;
  #batches = 0;

  constructor(options: Pick<ObserverOptions, 'movingAverage'> = {}) {
    const ma = options.movingAverage ?? false;
    if (typeof ma === 'number' && !(ma > 0 && ma <= 1)) throw new OptionsError(expected('a number in (0, 1]', 'movingAverage', ma));
    this.averagingConstant = ma === true ? DEFAULT_AVERAGING_CONSTANT : ma === false ? 0 : ma;
  }

  update(data: Float32Array): void {
    const s = extremes(data);
    this.nonFinite += s.nonFinite;
    this.updateExtremes(s.min, s.max, data.length - s.nonFinite);
  }

  /**
   * Adds a batch known only by its finite extremes and how many finite values it had (as onnxruntime's ReduceMin
   * and ReduceMax compute them inside the graph, without copying the tensor out).
   */
  updateExtremes(min: number, max: number, count: number): void {
    if (count === 0) return;
    this.count += count;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    const c = this.averagingConstant;
    if (this.#batches++ === 0) {
      this.#avgMin = min;
      this.#avgMax = max;
    } else if (c > 0) {
      this.#avgMin += c * (min - this.#avgMin);
      this.#avgMax += c * (max - this.#avgMax);
    }
  }

  range(): TensorRange {
    if (this.count === 0) throw noValues(this.method);
    return this.averagingConstant > 0 ? { min: this.#avgMin, max: this.#avgMax } : { min: this.min, max: this.max };
  }

  retainedBytes(): number {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram observers

/** What the three histogram observers share: the histogram and the counts. */
abstract class HistogramObserver implements Observer {
  abstract readonly method: CalibrationMethod;
  /** The streaming histogram (read it, do not change it). */
  readonly histogram: Histogram;
  nonFinite = 0;

  constructor(bins: number, absolute: boolean) {
    this.histogram = new Histogram(bins, absolute);
  }

  get count(): number {
    return this.histogram.total;
  }

  get min(): number {
    return this.histogram.min;
  }

  get max(): number {
    return this.histogram.max;
  }

  update(data: Float32Array): void {
    this.nonFinite += this.histogram.add(data);
  }

  abstract range(): TensorRange;

  retainedBytes(): number {
    return this.histogram.retainedBytes();
  }
}

/**
 * Percentile ranges from the streaming histogram: [p_low, p_high] so that (100 − p)/2 % of the values lie below
 * p_low and as many above p_high, each interpolated inside its bin (within one bin width of numpy.percentile over
 * all values); with `symmetric`, ±t with t the p-th percentile of |x| (onnxruntime's symmetric percentile), cut
 * to [min, max].
 *
 * @example
 * ```ts
 * const o = new PercentileObserver({ percentile: 99.99 });
 * for (const batch of batches) o.update(batch);
 * o.range();
 * ```
 */
export class PercentileObserver extends HistogramObserver {
  readonly method = 'percentile' as const;
  readonly percentile: number;
  readonly symmetric: boolean;

  constructor(options: Pick<ObserverOptions, 'percentile' | 'bins' | 'symmetric'> = {}) {
    const p = options.percentile ?? DEFAULT_PERCENTILE;
    if (typeof p !== 'number' || !(p >= 50 && p <= 100)) throw new OptionsError(expected('a number in [50, 100]', 'percentile', p));
    super(checkBins(options.bins), options.symmetric ?? false);
    this.percentile = p;
    this.symmetric = options.symmetric ?? false;
  }

  range(): TensorRange {
    const h = this.histogram;
    if (h.total === 0) throw noValues(this.method);
    if (this.symmetric) {
      const t = h.quantile(this.percentile / 100);
      return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
    }
    const tail = (100 - this.percentile) / 200;
    return { min: h.quantile(tail), max: h.quantile(1 - tail) };
  }
}

/**
 * KL-divergence (entropy) ranges, TensorRT's variant: the threshold t over the |x| histogram minimising
 * KL(P‖Q) with `levels` (128) quantized levels (see `entropyThreshold`); the range is ±t cut to [min, max], so a
 * ReLU output gets [0, t].
 *
 * Exact zeros are left out of the histogram by default (`skipZeros`, as pytorch-quantization's
 * `skip_zeros`): 0 is exact in any range, so zeros say nothing about where to clip, but half of a ReLU output is
 * zeros, and that spike in P's first bin, which Q can only match with one bin per level, drives TensorRT's and
 * onnxruntime's search to thresholds of about 128 bins (on the fixture CNN: 2.4 where the data reach 15.3).
 *
 * @example
 * ```ts
 * const o = new EntropyObserver();
 * o.update(activations);
 * o.range();
 * ```
 */
export class EntropyObserver extends HistogramObserver {
  readonly method = 'entropy' as const;
  readonly levels: number;
  readonly skipZeros: boolean;

  constructor(options: Pick<ObserverOptions, 'bins' | 'levels' | 'skipZeros'> = {}) {
    const levels = options.levels ?? 128;
    if (!Number.isSafeInteger(levels) || levels < 2) throw new OptionsError(expected('an integer ≥ 2', 'levels', options.levels));
    const skipZeros = options.skipZeros ?? true;
    super(checkBins(options.bins, levels), true);
    this.levels = levels;
    this.skipZeros = skipZeros;
  }

  range(): TensorRange {
    const h = this.histogram;
    if (h.total === 0) throw noValues(this.method);
    // all zeros (or nothing else): nothing to clip
    if (this.skipZeros && h.zeros === h.total) return { min: h.min, max: h.max };
    const t = entropyThreshold(h, this.levels, this.skipZeros);
    return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
  }
}

/**
 * Ranges minimising the expected squared error of `bits`-bit asymmetric quantization (zero point, range holding
 * 0), computed from the signed histogram (see `mseRange`).
 *
 * @example
 * ```ts
 * const o = new MseObserver();
 * o.update(activations);
 * o.range();
 * ```
 */
export class MseObserver extends HistogramObserver {
  readonly method = 'mse' as const;
  readonly bits: number;

  constructor(options: Pick<ObserverOptions, 'bins' | 'bits'> = {}) {
    const bits = options.bits ?? 8;
    if (!Number.isSafeInteger(bits) || bits < 2 || bits > 16) throw new OptionsError(expected('an integer in [2, 16]', 'bits', options.bits));
    super(checkBins(options.bins), false);
    this.bits = bits;
  }

  range(): TensorRange {
    if (this.histogram.total === 0) throw noValues(this.method);
    return mseRange(this.histogram, this.bits);
  }
}

/**
 * The observer of each method, in one table.
 *
 * @example
 * ```ts
 * const o = OBSERVERS.percentile({ percentile: 99.99 });
 * ```
 */
export const OBSERVERS: Readonly<Record<CalibrationMethod, (options: ObserverOptions) => Observer>> = {
  minmax: (o) => new MinMaxObserver(o),
  percentile: (o) => new PercentileObserver(o),
  entropy: (o) => new EntropyObserver(o),
  mse: (o) => new MseObserver(o),
};

/**
 * Makes the observer of a method.
 *
 * @example
 * ```ts
 * const o = makeObserver('entropy', { bins: 2048 });
 * ```
 */
export function makeObserver(method: CalibrationMethod, options: ObserverOptions = {}): Observer {
  const make = OBSERVERS[method];
  if (!make) throw new OptionsError(expected(`a calibration method (${Object.keys(OBSERVERS).join(', ')})`, 'method', method));
  return make(options);
}

// ---------------------------------------------------------------------------------------------------------------
// Quantization error

/** Errors of a quantized tensor against its float original. */
export interface QuantizationError {
  /** Signal-to-quantization-noise ratio, 10·log10(Σx² / Σ(x − x̂)²), in dB (Infinity when equal). */
  sqnrDb: number;
  /** Mean squared error. */
  mse: number;
  maxAbsError: number;
}

/**
 * How far dequantized values are from the float ones: SQNR in dB, mean squared and largest absolute error.
 *
 * @example
 * ```ts
 * quantizationError(float, dequantized).sqnrDb; // 38.2
 * ```
 */
export function quantizationError(float: Float32Array, dq: Float32Array): QuantizationError {
  if (float.length !== dq.length) throw new OptionsError(expected(`${float.length} dequantized values (as many as the float ones)`, 'dq', `${dq.length} values`));
  let signal = 0, noise = 0, maxAbs = 0;
  for (let i = 0; i < float.length; i++) {
    const x = float[i]!, d = x - dq[i]!;
    signal += x * x;
    noise += d * d;
    const a = Math.abs(d);
    if (!(a <= maxAbs)) maxAbs = a; // NaN propagates
  }
  return {
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
    mse: float.length ? noise / float.length : 0,
    maxAbsError: maxAbs,
  };
}

/**
 * SQNR in dB of dequantized values against the float ones (see `quantizationError`).
 *
 * @example
 * ```ts
 * sqnr(new Float32Array([1, 2]), new Float32Array([1, 2.01])); // ≈ 46.99
 * ```
 */
export function sqnr(float: Float32Array, dq: Float32Array): number {
  return quantizationError(float, dq).sqnrDb;
}
