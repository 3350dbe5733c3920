/**
 * A streaming histogram with a fixed number of bins over a range that grows as data arrives, and the range
 * choices computed from it (percentile, entropy, mse).
 *
 * Growth without keeping the data: the range is `[lo, lo + bins·width]`. When a value falls outside it, the width
 * is multiplied by 2^k and the origin moved down by a whole number m of old bins, so that every old bin i lies
 * inside one new bin, `floor((i + m) / 2^k)`, and the old counts are merged exactly (onnxruntime's
 * HistogramCollector instead adds bins, so its memory grows with the spread of the data, and it re-histograms
 * each batch with numpy). k is the smallest power that fits; growing upwards keeps the low end (ReLU outputs stay
 * anchored at 0), growing downwards keeps the high end. Right after a growth the span it had to cover fills more
 * than half of the bins; earlier growths can leave the data itself on fewer (the widening test checks > 1/4).
 *
 * Per batch, one pass (see `add`): values are checked four at a time against the exact min and max so far and
 * binned into four sub-histograms, so consecutive values falling in one bin (the zeros of a ReLU) do not wait on
 * each other; new extremes, NaN and ±Infinity (skipped and counted) take a slow path that also grows the range.
 */
import { EvaluationError } from '../../errors.js';

/** Sub-histograms of the binning loop (see the module doc). */
const LANES = 4;
/** Absolute histograms reach a little beyond the largest |x| (see `add`). */
const ABS_MARGIN = 1 + 2 ** -20;

/** Result of `extremes`, kept in module scope so that a scan allocates nothing. */
const found = { min: Infinity, max: -Infinity, nonFinite: 0 };

/**
 * The smallest and largest finite values of `data` and the count of NaN and ±Infinity values. Four values at a
 * time are checked against the extremes so far; only a group holding a new extreme or a non-finite value (NaN fails
 * both compares) takes the slow path. The result object is reused by the next call.
 *
 * @example
 * ```ts
 * extremes(new Float32Array([2, NaN, -1])); // { min: -1, max: 2, nonFinite: 1 }
 * ```
 */
export function extremes(data: Float32Array): { readonly min: number; readonly max: number; readonly nonFinite: number } {
  const n = data.length;
  let i = 0, bad = 0;
  while (i < n && data[i]! - data[i]! !== 0) {
    bad++;
    i++;
  }
  let mn = i < n ? data[i]! : Infinity, mx = i < n ? data[i]! : -Infinity;
  const m = n - ((n - i) & 3);
  for (; i < m; i += 4) {
    const x0 = data[i]!, x1 = data[i + 1]!, x2 = data[i + 2]!, x3 = data[i + 3]!;
    if (x0 >= mn && x0 <= mx && x1 >= mn && x1 <= mx && x2 >= mn && x2 <= mx && x3 >= mn && x3 <= mx) continue;
    for (let j = i; j < i + 4; j++) {
      const x = data[j]!;
      if (x - x !== 0) bad++;
      else {
        if (x < mn) mn = x;
        if (x > mx) mx = x;
      }
    }
  }
  for (; i < n; i++) {
    const x = data[i]!;
    if (x - x !== 0) bad++;
    else {
      if (x < mn) mn = x;
      if (x > mx) mx = x;
    }
  }
  found.min = mn;
  found.max = mx;
  found.nonFinite = bad;
  return found;
}

/**
 * Fixed-size histogram over a growing range. A signed histogram's bin j holds [lo + j·w, lo + (j+1)·w) (the last
 * also its right edge); an `absolute` one bins |x| over [0, hi] with bin j holding (j·w, (j+1)·w] and exact zeros
 * counted apart in `zeros` (ReLU outputs are half zeros; entropy calibration leaves them out).
 *
 * @example
 * ```ts
 * const h = new Histogram(2048);
 * h.add(new Float32Array([0.5, -1, 2]));
 * h.quantile(0.5); // 0.5
 * ```
 */
export class Histogram {
  /** Count per bin (float64: exact up to 2^53 values). */
  readonly counts: Float64Array;
  /** Absolute histograms: values that were exactly ±0 (not in `counts`). */
  zeros = 0;
  /** Counts of the batch being binned: LANES sub-histograms of bins + 1 slots (see `#fold`). */
  readonly #lanes: Uint32Array;
  /** Left edge of bin 0. */
  lo = 0;
  /** Bin width; 0 before the first value. */
  width = 0;
  /** Finite values binned (zeros included). */
  total = 0;
  /** Smallest and largest finite value binned (signed values, also for an absolute histogram). */
  min = Infinity;
  max = -Infinity;
  /** Times the range grew (for tests and reports). */
  growths = 0;

  constructor(
    readonly bins: number,
    readonly absolute = false,
  ) {
    if (!Number.isSafeInteger(bins) || bins < 2 || bins > 1 << 24) throw new RangeError(`Histogram bins must be an integer in [2, 16777216], got ${bins}`);
    this.counts = new Float64Array(bins);
    this.#lanes = new Uint32Array((bins + 1) * LANES);
  }

  /** Right edge of the last bin. */
  get hi(): number {
    return this.lo + this.bins * this.width;
  }

  /** Left edge of bin i (i = bins gives `hi`). */
  edge(i: number): number {
    return this.lo + i * this.width;
  }

  /** Bytes of typed arrays this histogram keeps. */
  retainedBytes(): number {
    return this.counts.byteLength + this.#lanes.byteLength;
  }

  /**
   * Bins the finite values of `data` and returns how many NaN and ±Infinity values it skipped.
   *
   * One pass: four values at a time are checked against the exact extremes so far, which lie inside the range, and
   * binned into four sub-histograms; a group holding a new extreme or a non-finite value takes the slow path,
   * which grows the range when a value falls outside it. The very first values set the range with one more pass.
   */
  add(data: Float32Array): number {
    const n = data.length;
    let bad = 0;
    if (this.width === 0) {
      const e = extremes(data);
      if (!(e.min <= e.max)) return e.nonFinite;
      // |x|·inv must stay at or below bins under rounding (Math.ceil): a relative margin far above it
      if (this.absolute) this.#init(0, Math.max(-e.min, e.max) * ABS_MARGIN);
      else this.#init(e.min, e.max);
      this.min = e.min;
      this.max = e.max;
    }
    let mn = this.min, mx = this.max, lo = this.lo, inv = 1 / this.width;
    const s = this.#lanes, M = this.bins + 1, M2 = 2 * M, M3 = 3 * M;
    const m = n - (n & 3);
    let i = 0;
    if (!this.absolute) {
      // x in [min, max] ⊂ [lo, hi]: (x - lo) * inv is in [0, bins] (bins when x = hi: slot `bins` of the lane)
      for (; i < m; i += 4) {
        const x0 = data[i]!, x1 = data[i + 1]!, x2 = data[i + 2]!, x3 = data[i + 3]!;
        if (x0 >= mn && x0 <= mx && x1 >= mn && x1 <= mx && x2 >= mn && x2 <= mx && x3 >= mn && x3 <= mx) {
          s[((x0 - lo) * inv) | 0]++;
          s[M + (((x1 - lo) * inv) | 0)]++;
          s[M2 + (((x2 - lo) * inv) | 0)]++;
          s[M3 + (((x3 - lo) * inv) | 0)]++;
        } else {
          this.min = mn;
          this.max = mx;
          bad += this.#slow(data, i, i + 4);
          mn = this.min;
          mx = this.max;
          lo = this.lo;
          inv = 1 / this.width;
        }
      }
    } else {
      // slot 0 takes exact zeros (ceil(0) = 0), slot j the |x| in ((j-1)·w, j·w]
      for (; i < m; i += 4) {
        const x0 = data[i]!, x1 = data[i + 1]!, x2 = data[i + 2]!, x3 = data[i + 3]!;
        if (x0 >= mn && x0 <= mx && x1 >= mn && x1 <= mx && x2 >= mn && x2 <= mx && x3 >= mn && x3 <= mx) {
          s[Math.ceil(Math.abs(x0) * inv)]++;
          s[M + Math.ceil(Math.abs(x1) * inv)]++;
          s[M2 + Math.ceil(Math.abs(x2) * inv)]++;
          s[M3 + Math.ceil(Math.abs(x3) * inv)]++;
        } else {
          this.min = mn;
          this.max = mx;
          bad += this.#slow(data, i, i + 4);
          mn = this.min;
          mx = this.max;
          inv = 1 / this.width;
        }
      }
    }
    this.min = mn;
    this.max = mx;
    bad += this.#slow(data, i, n);
    this.#fold();
    this.total += n - bad;
    return bad;
  }

  /** Bins data[from, to) one value at a time: skips non-finite values, updates the extremes, grows the range. */
  #slow(data: Float32Array, from: number, to: number): number {
    let bad = 0;
    const s = this.#lanes;
    for (let i = from; i < to; i++) {
      const x = data[i]!;
      if (x - x !== 0) {
        bad++;
        continue;
      }
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
      if (this.absolute) {
        const a = Math.abs(x);
        if (a > this.hi) {
          this.#fold();
          this.#grow(0, a * ABS_MARGIN);
        }
        s[Math.min(this.bins, Math.ceil(a / this.width))]++;
      } else {
        if (x < this.lo || x > this.hi) {
          this.#fold();
          this.#grow(Math.min(x, this.lo), Math.max(x, this.hi));
        }
        s[Math.min(this.bins, Math.max(0, Math.floor((x - this.lo) / this.width)))]++;
      }
    }
    return bad;
  }

  /** Adds the lanes into `counts` and clears them. Slot `bins` (x = hi) joins the last bin; absolute slot 0 is zeros. */
  #fold(): void {
    const s = this.#lanes, c = this.counts, N = this.bins, M = N + 1;
    const sum = (j: number) => s[j]! + s[M + j]! + s[2 * M + j]! + s[3 * M + j]!;
    if (this.absolute) {
      this.zeros += sum(0);
      for (let j = 1; j <= N; j++) c[j - 1]! += sum(j);
    } else {
      for (let j = 0; j < N; j++) c[j]! += sum(j);
      c[N - 1]! += sum(N);
    }
    s.fill(0);
  }

  #init(low: number, high: number): void {
    let span = high - low;
    // one value (or all equal): any positive width; later growth merges exactly whatever it is
    if (!(span > 0)) span = Math.max(Math.abs(high), 1e-30) * 2 ** -10;
    if (!Number.isFinite(span)) throw new EvaluationError(`Values span more than the largest float (${low} to ${high}); cannot histogram them`);
    this.lo = low;
    this.width = span / this.bins;
  }

  /** Widens the range to hold [low, high] by merging bins (see the module doc). */
  #grow(low: number, high: number): void {
    const N = this.bins, w = this.width, lo = this.lo, hi = this.hi;
    const needLo = Math.min(low, lo), needHi = Math.max(high, hi);
    let k = Math.max(1, Math.ceil(Math.log2((needHi - needLo) / (N * w))));
    for (;; k++) {
      const W = w * 2 ** k;
      if (!Number.isFinite(W * N)) throw new EvaluationError(`Values span more than the largest float (${needLo} to ${needHi}); cannot histogram them`);
      const mLow = Math.max(0, Math.ceil((lo - needLo) / w));
      const mHigh = Math.floor((lo + N * W - needHi) / w);
      if (mLow > mHigh) continue;
      const m = low >= lo ? mLow : high <= hi ? mHigh : Math.floor((mLow + mHigh) / 2);
      const scale = 2 ** k;
      const old = this.counts.slice();
      this.counts.fill(0);
      for (let i = 0; i < N; i++) {
        const n = old[i]!;
        if (n === 0) continue;
        // (i + m + 0.5) / 2^k is the old bin's centre in new-bin units, half an old bin away from any new edge
        let j = Math.floor((i + m + 0.5) / scale);
        if (j > N - 1) j = N - 1;
        this.counts[j]! += n;
      }
      this.lo = lo - m * w;
      this.width = W;
      this.growths++;
      return;
    }
  }

  /**
   * The value below which a fraction q of the binned values lie, as numpy's default (linear) percentile places it:
   * with t = q·(total − 1), the order statistics ⌊t⌋ and ⌊t⌋ + 1 interpolated linearly. Each order statistic is
   * placed inside its bin as if the bin's values were evenly spread (the first and last are the exact min and
   * max), so the result is within one bin width of numpy's over all the values, also in sparse tails where the two
   * neighbours lie bins apart. For an absolute histogram the values are |x|.
   */
  quantile(q: number): number {
    if (this.total === 0) throw new EvaluationError('No finite values were observed: no quantile');
    const t = Math.min(Math.max(q, 0), 1) * (this.total - 1);
    const k = Math.floor(t);
    const a = this.#orderStatistic(k);
    return k + 1 < this.total && t > k ? a + (t - k) * (this.#orderStatistic(k + 1) - a) : a;
  }

  /** The k-th smallest value (0-based), placed inside its bin; clamped to the exact extremes. */
  #orderStatistic(k: number): number {
    const lowest = this.absolute ? (this.min <= 0 && this.max >= 0 ? 0 : Math.min(Math.abs(this.min), Math.abs(this.max))) : this.min;
    const highest = this.absolute ? Math.max(-this.min, this.max) : this.max;
    if (k <= 0 && !this.absolute) return lowest;
    if (k >= this.total - 1) return highest;
    let before = 0;
    if (this.absolute) {
      if (k < this.zeros) return 0;
      before = this.zeros;
    }
    const c = this.counts;
    let v = highest;
    for (let j = 0; j < this.bins; j++) {
      const n = c[j]!;
      if (n > 0 && k < before + n) {
        v = this.lo + (j + (k - before + 0.5) / n) * this.width;
        break;
      }
      before += n;
    }
    return Math.min(Math.max(v, lowest), highest);
  }
}

/**
 * The KL-divergence threshold over an |x| histogram (TensorRT's calibration, Migacz, GTC 2017, as MXNet's
 * `_get_optimal_threshold` implements it on one side): for each candidate i = levels … bins, P is the first i
 * bins with the count of everything beyond added to its last bin; Q merges the same i bins (without the
 * outliers) into `levels` groups of ⌊i/levels⌋ bins (the remainder joins the last group) and spreads each
 * group's count evenly over the bins where P is non-zero; both are smoothed (zeros become ε = 1e-4, taken
 * evenly from the non-zeros; a candidate whose Q would go ≤ 0 scores +∞) and normalised; the threshold is the
 * right edge of bin i with the smallest KL(P‖Q) (the first, on ties). Exact zeros are left out unless
 * `skipZeros` is false (see EntropyObserver).
 *
 * Unlike onnxruntime's `get_entropy_threshold`, which runs the same search on a signed histogram centred on 0
 * and keeps Q in integers (truncating), this works on |x| as TensorRT does.
 *
 * @example
 * ```ts
 * const t = entropyThreshold(absHistogram, 128); // clip |x| at t
 * ```
 */
export function entropyThreshold(h: Histogram, levels = 128, skipZeros = true): number {
  if (!h.absolute) throw new RangeError('entropyThreshold needs an absolute (|x|) histogram');
  if (h.total === 0) throw new EvaluationError('No finite values were observed: no entropy threshold');
  const N = h.bins;
  if (N < levels) return h.hi;
  let hist = h.counts;
  if (!skipZeros && h.zeros > 0) {
    // zeros belong to the first bin, as in TensorRT's histogram of |x|
    hist = hist.slice();
    hist[0]! += h.zeros;
  }
  // Per candidate i, two passes over the first i bins and one log per non-zero bin of P, using:
  // - P sums to every count (outliers are folded in), and smoothing keeps sums, so ΣP = ΣP' = T for all i;
  // - Q is zero exactly where P is zero, so both smooth to ε there and those terms vanish in Σ P' log(P'/Q');
  // - hence KL = log(ΣQ / T) + (1/T) · Σ_{P≠0} P' log(P'/Q') with P' = P − ε1(P) and Q' = Q − ε1(Q) (or ε where a
  //   non-zero P bin's level sums to 0: only the last bin, holding outliers, can have that).
  let T = 0;
  for (let j = 0; j < N; j++) T += hist[j]!;
  if (T === 0) return h.hi;
  const groupSum = new Float64Array(levels);
  const groupNonzero = new Float64Array(levels);
  let best = Infinity, bestI = N;
  let outliers = T; // count in bins i … N-1
  for (let j = 0; j < levels; j++) outliers -= hist[j]!;
  for (let i = levels; i <= N; i++) {
    if (i > levels) outliers -= hist[i - 1]!;
    const merged = Math.floor(i / levels);
    const last = hist[i - 1]! + outliers; // P's last bin
    let zerosP = 0, zerosQ = 0, sumQ = 0, minP = Infinity, minQ = Infinity;
    for (let g = 0; g < levels; g++) {
      const start = g * merged;
      const stop = g === levels - 1 ? i : start + merged;
      let sum = 0, nonzero = 0;
      for (let j = start; j < stop; j++) {
        const h = hist[j]!;
        sum += h;
        const pj = j === i - 1 ? last : h;
        if (pj !== 0) {
          nonzero++;
          if (pj < minP) minP = pj;
        }
      }
      groupSum[g] = sum;
      groupNonzero[g] = nonzero;
      zerosP += stop - start - nonzero;
      if (nonzero > 0) {
        if (sum > 0) {
          sumQ += sum;
          if (sum / nonzero < minQ) minQ = sum / nonzero;
        } else zerosQ += nonzero;
      }
    }
    zerosQ += zerosP;
    const eps1P = (EPS * zerosP) / (i - zerosP);
    const eps1Q = (EPS * zerosQ) / (i - zerosQ);
    // smoothing fails when P or Q is all zeros or a non-zero entry would drop to ≤ 0: +∞
    if (i === zerosQ || minP - eps1P <= 0 || minQ - eps1Q <= 0) continue;
    let acc = 0;
    for (let g = 0; g < levels; g++) {
      const start = g * merged;
      const stop = g === levels - 1 ? i : start + merged;
      const nonzero = groupNonzero[g]!;
      if (nonzero === 0) continue;
      const sum = groupSum[g]!;
      const q = sum > 0 ? sum / nonzero - eps1Q : EPS;
      for (let j = start; j < stop; j++) {
        const pj = j === i - 1 ? last : hist[j]!;
        if (pj === 0) continue;
        const pp = pj - eps1P;
        acc += pp * Math.log(pp / q);
      }
    }
    const kl = Math.log(sumQ / T) + acc / T;
    if (kl < best) {
      best = kl;
      bestI = i;
    }
  }
  return h.edge(bestI);
}

const EPS = 1e-4;

/**
 * The clipping range [A, B] minimising the expected squared error of `bits`-bit asymmetric (uint8-style, with a
 * zero point) quantization, from a signed histogram. Candidates: A and B on bin edges, always holding 0 (a range
 * that leaves 0 out is widened to 0 by the quantizer, so its error is counted that way). Expected error:
 * - values outside: (distance of the bin centre to the clipped end)², times the bin's count;
 * - values inside: s²/12 each (uniform rounding error, s = (B − A)/(2^bits − 1)), except the bin that holds 0:
 *   0 is exactly representable, so values there err by less than the bin: min(s²/12, w²/3) each (ReLU outputs
 *   put half their values there; charging them s²/12 would clip their tails too hard).
 * Prefix sums make each candidate O(1); every pair is tried (ties: the first, lower edges first).
 *
 * @example
 * ```ts
 * const { min, max } = mseRange(signedHistogram); // clipped to the observed [min, max]
 * ```
 */
export function mseRange(h: Histogram, bits = 8): { min: number; max: number } {
  if (h.absolute) throw new RangeError('mseRange needs a signed histogram');
  if (h.total === 0) throw new EvaluationError('No finite values were observed: no mse range');
  const N = h.bins, c = h.counts, lo = h.lo, w = h.width;
  const levels = 2 ** bits - 1;
  // prefix sums over bins, in bin units u_j = j + 0.5 (centres), to keep magnitudes small
  const S0 = new Float64Array(N + 1), S1 = new Float64Array(N + 1), S2 = new Float64Array(N + 1);
  for (let j = 0; j < N; j++) {
    const n = c[j]!, u = j + 0.5;
    S0[j + 1] = S0[j]! + n;
    S1[j + 1] = S1[j]! + n * u;
    S2[j + 1] = S2[j]! + n * u * u;
  }
  // zero in bin units and the bin holding it (-1 when 0 is outside the histogram)
  const uz = -lo / w;
  const zBin = uz >= 0 && uz < N ? Math.floor(uz) : uz === N ? N - 1 : -1;
  const nz = zBin >= 0 ? c[zBin]! : 0;
  const total = S0[N]!;
  // lower ends: edges at or below 0, plus the first edge above it (standing for A = 0); upper ends alike
  const iaMax = Math.min(N - 1, Math.max(0, Math.ceil(uz)));
  const ibMin = Math.max(1, Math.min(N, Math.floor(uz)));
  let best = Infinity, bestA = lo, bestB = h.hi;
  for (let ia = 0; ia <= iaMax; ia++) {
    const uA = Math.min(ia, uz); // effective lower end A = min(edge, 0), in bin units
    const jA = clampIndex(Math.ceil(uA - 0.5), N); // bins [0, jA) have centres below A
    const below = uA * uA * S0[jA]! - 2 * uA * S1[jA]! + S2[jA]!;
    for (let ib = Math.max(ia + 1, ibMin); ib <= N; ib++) {
      const uB = Math.max(ib, uz);
      const jB = clampIndex(Math.floor(uB - 0.5) + 1, N); // bins [jB, N) have centres above B
      const above = uB * uB * (total - S0[jB]!) - 2 * uB * (S1[N]! - S1[jB]!) + (S2[N]! - S2[jB]!);
      const s = (uB - uA) / levels;
      const s2 = (s * s) / 12;
      let inside = S0[jB]! - S0[jA]!;
      let zero = 0;
      if (zBin >= jA && zBin < jB) {
        inside -= nz;
        zero = nz * Math.min(s2, 1 / 3);
      }
      const err = below + above + inside * s2 + zero;
      if (err < best) {
        best = err;
        bestA = lo + uA * w;
        bestB = lo + uB * w;
      }
    }
  }
  return { min: Math.max(h.min, bestA), max: Math.min(h.max, bestB) };
}

function clampIndex(j: number, n: number): number {
  return j < 0 ? 0 : j > n ? n : j;
}
