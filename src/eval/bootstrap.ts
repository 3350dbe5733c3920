/**
 * Confidence intervals for a median by the percentile bootstrap, and the sequential decision the latency gate
 * takes on per-pair time ratios (candidate / baseline).
 *
 * Why the median of ratios: each ratio comes from a baseline block and a candidate block timed back to back, so
 * slow drifts of the machine (another job starting, CPU frequency changes) cancel inside a pair; the median then
 * ignores the pairs a scheduler hiccup hit on one side only, which a mean would not.
 *
 * Why the bootstrap and not a formula: the ratios of a busy CI runner are skewed and heavy-tailed, and the
 * percentile bootstrap of the median assumes nothing about their shape.
 */
import { OptionsError, expected } from '../errors.js';
import { mulberry32 } from '../util/random.js';

/** Options of `bootstrapMedianCI`. */
export interface BootstrapOptions {
  /** Coverage of the interval, in (0, 1) (default 0.95). */
  confidence?: number;
  /** Bootstrap resamples (default 2000). */
  resamples?: number;
  /** Seed of the resampling (default 0): the same samples and seed give the same interval. */
  seed?: number;
}

/** A median with its confidence interval. */
export interface MedianCI {
  median: number;
  low: number;
  high: number;
}

function checkBootstrapOptions(o: BootstrapOptions): Required<BootstrapOptions> {
  const confidence = o.confidence ?? 0.95;
  const resamples = o.resamples ?? 2000;
  const seed = o.seed ?? 0;
  if (!(Number.isFinite(confidence) && confidence > 0 && confidence < 1)) throw new OptionsError(expected('a number in (0, 1)', 'confidence', o.confidence));
  if (!(Number.isInteger(resamples) && resamples >= 1)) throw new OptionsError(expected('a positive integer', 'resamples', o.resamples));
  if (!Number.isInteger(seed)) throw new OptionsError(expected('an integer', 'seed', o.seed));
  return { confidence, resamples, seed };
}

/** The median of values sorted ascending (mean of the two middle ones for an even count). */
function sortedMedian(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  const h = n >> 1;
  return n % 2 ? sorted[h]! : (sorted[h - 1]! + sorted[h]!) / 2;
}

/**
 * The sample median and a percentile-bootstrap confidence interval for the population median.
 *
 * Each resample draws n indices with replacement; since the samples are sorted once, the resample's median is
 * the value at the k-th smallest drawn index, found by counting draws per index (O(n) per resample, no sort).
 *
 * @example
 * ```ts
 * const { median, low, high } = bootstrapMedianCI([1.02, 0.98, 1.01, 1.0, 0.99], { confidence: 0.95, seed: 1 });
 * ```
 */
export function bootstrapMedianCI(samples: readonly number[], options: BootstrapOptions = {}): MedianCI {
  const { confidence, resamples, seed } = checkBootstrapOptions(options);
  if (samples.length === 0) throw new OptionsError('bootstrapMedianCI needs at least one sample');
  const bad = samples.findIndex((s) => !Number.isFinite(s));
  if (bad >= 0) throw new OptionsError(expected('finite numbers', `sample ${bad}`, samples[bad]));
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const median = sortedMedian(sorted);
  const rand = mulberry32(seed);
  const counts = new Int32Array(n);
  const medians = new Float64Array(resamples);
  // 0-based ranks of the middle element(s) of a resample of size n
  const k1 = (n - 1) >> 1;
  const k2 = n >> 1;
  for (let r = 0; r < resamples; r++) {
    counts.fill(0);
    for (let j = 0; j < n; j++) counts[Math.floor(rand() * n)]!++;
    let seen = 0;
    let v1 = NaN;
    let i = 0;
    for (; i < n; i++) {
      seen += counts[i]!;
      if (seen > k1) {
        v1 = sorted[i]!;
        break;
      }
    }
    let v2 = v1;
    if (k2 !== k1 && seen <= k2) {
      for (i++; i < n; i++) {
        seen += counts[i]!;
        if (seen > k2) {
          v2 = sorted[i]!;
          break;
        }
      }
    }
    medians[r] = (v1 + v2) / 2;
  }
  medians.sort();
  const alpha = 1 - confidence;
  const lowIndex = Math.max(0, Math.floor((alpha / 2) * resamples));
  const highIndex = Math.min(resamples - 1, Math.ceil((1 - alpha / 2) * resamples) - 1);
  return { median, low: medians[lowIndex]!, high: medians[highIndex]! };
}

/** Options of `decideRatio`. */
export interface DecideRatioOptions extends BootstrapOptions {
  /** No verdict before this many ratios, so that an early lucky interval does not decide (default 20). */
  minPairs?: number;
}

/** What `decideRatio` concludes. */
export interface RatioDecision extends MedianCI {
  /** `fail`: the whole interval is above 1 + budget; `pass`: the whole interval is at or below it; else `undecided`. */
  verdict: 'pass' | 'fail' | 'undecided';
  /** 1 + budget: the largest accepted ratio. */
  limit: number;
  pairs: number;
  confidence: number;
}

/**
 * The latency gate's decision on candidate/baseline time ratios: with `limit = 1 + budget`, `fail` when the
 * bootstrap interval of the median ratio lies wholly above the limit (the candidate is slower than allowed,
 * beyond noise), `pass` when it lies wholly at or below it, `undecided` otherwise or with fewer than `minPairs`
 * ratios (the caller then measures more, or gives up as "inconclusive").
 *
 * A model gated against itself has a true ratio of 1: it can only fail if the interval misses 1 by more than
 * the budget, so it passes (once the interval is narrower than the budget) or stays undecided.
 *
 * @example
 * ```ts
 * decideRatio(ratios, 0.05, { minPairs: 20, seed: 1 }).verdict; // 'pass' | 'fail' | 'undecided'
 * ```
 */
export function decideRatio(ratios: readonly number[], budget: number, options: DecideRatioOptions = {}): RatioDecision {
  if (!(Number.isFinite(budget) && budget > -1)) throw new OptionsError(expected('a fraction above -1', 'budget', budget));
  const minPairs = options.minPairs ?? 20;
  if (!(Number.isInteger(minPairs) && minPairs >= 1)) throw new OptionsError(expected('a positive integer', 'minPairs', options.minPairs));
  const { confidence } = checkBootstrapOptions(options);
  const limit = 1 + budget;
  if (ratios.length === 0) return { verdict: 'undecided', median: NaN, low: NaN, high: NaN, limit, pairs: 0, confidence };
  const ci = bootstrapMedianCI(ratios, options);
  let verdict: RatioDecision['verdict'] = 'undecided';
  if (ratios.length >= minPairs) {
    if (ci.low > limit) verdict = 'fail';
    else if (ci.high <= limit) verdict = 'pass';
  }
  return { ...ci, verdict, limit, pairs: ratios.length, confidence };
}
