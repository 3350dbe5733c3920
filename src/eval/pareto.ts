/**
 * The accuracy-vs-latency Pareto frontier: the points no other point beats on both counts.
 *
 * A point dominates another when its accuracy is at least as high and its latency at least as low, and one of the
 * two strictly so. The frontier is every point that nothing dominates. Rules, so the result is the same on every
 * run and on every machine:
 * - Points whose accuracy or latency is not a finite number (NaN, ±Infinity, missing) are left out: they can
 *   neither be on the frontier nor push another point off it.
 * - Equal points (same accuracy and same latency) do not dominate each other: all of them are on the frontier or
 *   none is.
 * - The frontier is returned in order of increasing latency (so a line can be drawn through it as it comes);
 *   equal points keep their input order.
 */

/**
 * The points on the accuracy-vs-latency Pareto frontier (maximize accuracy, minimize latency), fastest first.
 *
 * @example
 * ```ts
 * const points = [{ n: 'float', acc: 0.91, ms: 4 }, { n: 'int8', acc: 0.90, ms: 2 }, { n: 'bad', acc: 0.8, ms: 3 }];
 * paretoFrontier(points, (p) => ({ accuracy: p.acc, latencyMs: p.ms })).map((p) => p.n); // ['int8', 'float']
 * ```
 */
export function paretoFrontier<T>(points: readonly T[], get: (p: T) => { accuracy: number; latencyMs: number }): T[] {
  const valid: { p: T; accuracy: number; latencyMs: number; index: number }[] = [];
  points.forEach((p, index) => {
    const { accuracy, latencyMs } = get(p);
    if (Number.isFinite(accuracy) && Number.isFinite(latencyMs)) valid.push({ p, accuracy, latencyMs, index });
  });
  // fastest first; at equal latency the most accurate first, so it is seen before the points it dominates
  valid.sort((a, b) => a.latencyMs - b.latencyMs || b.accuracy - a.accuracy || a.index - b.index);
  const frontier: T[] = [];
  let best = -Infinity; // highest accuracy among the points seen (all at a latency ≤ the current one)
  let bestLatency = Infinity; // the lowest latency at which `best` was reached
  for (const v of valid) {
    if (v.accuracy > best) {
      frontier.push(v.p);
      best = v.accuracy;
      bestLatency = v.latencyMs;
    } else if (v.accuracy === best && v.latencyMs === bestLatency) {
      // an equal point of a frontier point: a tie, not a domination
      frontier.push(v.p);
    }
    // otherwise a point seen before is at least as fast and more accurate, or as accurate and strictly faster
  }
  return frontier;
}
