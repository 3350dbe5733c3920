/**
 * The one seeded random generator of onnxpress: mulberry32, a 32-bit state, fast, and the same sequence on every
 * machine and Node version, so a seed reproduces a run (dataset shuffles, initial weights, bootstrap resamples).
 */

/**
 * The generator as an object whose whole state is one 32-bit number (`state`), so that it can be saved in a
 * checkpoint and resumed exactly (the training loop's shuffles and augmentation).
 */
export class Mulberry32 {
  constructor(public state: number) {
    this.state |= 0;
  }

  /** The next number, uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** The next number as an unsigned 32-bit integer (the same draw as `next`, unscaled). */
  uint32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
}

/**
 * A uniform generator in [0, 1) from a 32-bit seed.
 *
 * @example
 * ```ts
 * const rand = mulberry32(42);
 * rand(); // the same sequence on every machine
 * ```
 */
export function mulberry32(seed: number): () => number {
  const g = new Mulberry32(seed);
  return () => g.next();
}
