/**
 * The one seeded random generator of onnxpress: mulberry32, a 32-bit state, fast, and the same sequence on every
 * machine and Node version, so a seed reproduces a run (dataset shuffles, initial weights, bootstrap resamples).
 */

/**
 * A uniform generator in [0, 1) from a 32-bit seed.
 *
 * @example
 * ```ts
 * const rand = mulberry32(42);
 * rand(); // 0.6011037519201636, on every machine
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
