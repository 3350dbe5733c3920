/**
 * `prune.nm`: N:M semi-structured sparsity (default 2:4): in every group of M consecutive weights along the input
 * channel (reduction) axis K, at most N are non-zero; the M − N smallest |w| of each group are set to zero (equal
 * magnitudes: the lower position is zeroed first).
 *
 * Groups run along K of the weight's `[outer, K, inner]` view (`common.ts`):
 * - Conv [O, I/g, kh, kw]: M consecutive input channels at each (o, kh, kw);
 * - Gemm: along K, rows of B [K, N] (transB = 0) or columns of B [N, K] (transB = 1);
 * - MatMul [K, N]: along K; ConvTranspose [I, O/g, k…]: along I.
 * A layer whose K is not a multiple of M (e.g. a first Conv over 1 input channel) is left dense, with a note.
 *
 * 2:4 is the pattern NVIDIA's sparse tensor cores run faster. onnxruntime's CPU kernels do not: a 2:4 model runs
 * at the same speed as the dense one on CPU; the zeros only compress (see `storage.ts`). Pruning a 2:4 model again
 * changes nothing.
 */
import { z } from 'zod';
import type { Model } from '../onnx/ir.js';
import type { Pass, PassContext } from '../pass.js';
import { PRUNABLE_OPS, copyModel, countParams, excludeFirstLastOption, excludeOption, readFloat32, type PrunableWeight } from './common.js';
import { applyMasks, densifyForPruning, nodesLabel, selectWeights, type PrunePassResult } from './magnitude.js';

/**
 * Options of `prune.nm`.
 *
 * @example
 * ```ts
 * nmOptions.parse({ pattern: '2:4', exclude: ['/conv1/Conv'] });
 * ```
 */
export const nmOptions = z
  .object({
    pattern: z.string().regex(/^\d+:\d+$/, 'Expected "N:M" such as "2:4"').default('2:4').describe('At most N non-zero weights in every M consecutive along the input-channel axis'),
    exclude: excludeOption,
    excludeFirstLast: excludeFirstLastOption,
    opTypes: z.array(z.enum(PRUNABLE_OPS)).default([...PRUNABLE_OPS]).describe('Op types whose weights are pruned'),
  })
  .superRefine((o, ctx) => {
    const p = parsePattern(o.pattern);
    if (p && !(p.m >= 1 && p.n < p.m)) ctx.addIssue({ code: 'custom', path: ['pattern'], message: `Expected N < M and M ≥ 1 in "${o.pattern}"` });
  });
export type NMOptions = z.input<typeof nmOptions>;

/**
 * Reads "N:M".
 *
 * @example
 * ```ts
 * parsePattern('2:4'); // { n: 2, m: 4 }
 * ```
 */
export function parsePattern(pattern: string): { n: number; m: number } | undefined {
  const r = /^(\d+):(\d+)$/.exec(pattern);
  return r ? { n: Number(r[1]), m: Number(r[2]) } : undefined;
}

/** Calls `f(indices)` for every group of M positions along K (positions in memory order within the group). */
function forEachGroup(w: PrunableWeight, m: number, f: (idx: Int32Array) => void): void {
  const { outer, k, inner } = w.view;
  const idx = new Int32Array(m);
  for (let o = 0; o < outer; o++) {
    for (let g = 0; g < k; g += m) {
      for (let i = 0; i < inner; i++) {
        for (let j = 0; j < m; j++) idx[j] = (o * k + g + j) * inner + i;
        f(idx);
      }
    }
  }
}

/** Marks the M − N smallest |w| of every group (ties: the lower position first). */
function nmMask(w: PrunableWeight, values: Float32Array, n: number, m: number): Uint8Array {
  const mask = new Uint8Array(values.length);
  const order = Array.from({ length: m }, (_, j) => j);
  forEachGroup(w, m, (idx) => {
    order.sort((a, b) => Math.abs(values[idx[a]!]!) - Math.abs(values[idx[b]!]!) || a - b);
    for (let j = 0; j < m - n; j++) mask[idx[order[j]!]!] = 1;
  });
  return mask;
}

/** Prunes `model` (a copy the caller owns) in place to N:M. */
export function nmInPlace(model: Model, o: z.output<typeof nmOptions>, _ctx: PassContext = {}): PrunePassResult {
  const { n, m } = parsePattern(o.pattern)!;
  const notes: string[] = [];
  const densified = densifyForPruning(model, notes);
  const paramsBefore = countParams(model);
  const weights = selectWeights(model, o, notes);
  const values = weights.map((w) => readFloat32(w.value.initializer!));
  const rowNotes = new Map<PrunableWeight, string>();
  const masks = weights.map((w, i) => {
    if (w.view.k % m !== 0) {
      const why = `K = ${w.view.k} input channels is not a multiple of ${m}: left dense`;
      rowNotes.set(w, why);
      notes.push(`left weight "${w.value.name}" of ${nodesLabel(w)} dense: ${why}`);
      return new Uint8Array(values[i]!.length);
    }
    return nmMask(w, values[i]!, n, m);
  });
  const r = applyMasks(model, weights, values, masks, 'n:m', paramsBefore, notes, rowNotes);
  return densified ? { ...r, modified: true } : r;
}

/**
 * The `prune.nm` pass (returns a new model). See the top of this file.
 *
 * @example
 * ```ts
 * const r = (await runPass(nmPass, model, { pattern: '2:4' })) as PrunePassResult;
 * checkNM(r.model, 2, 4).ok; // true
 * ```
 */
export const nmPass: Pass<typeof nmOptions> = {
  name: 'prune.nm',
  description: 'N:M semi-structured sparsity (default 2:4) along the input-channel axis of Conv, ConvTranspose, Gemm and MatMul weights',
  inPlace: false,
  options: nmOptions,
  run(model, options, ctx): PrunePassResult {
    return nmInPlace(copyModel(model), options, ctx);
  },
};

/** One layer of `checkNM`. */
export interface NMCheckRow {
  node: string;
  opType: string;
  weight: string;
  /** Length of the input-channel axis the groups run along. */
  k: number;
  /** False when K is not a multiple of M (the pattern cannot hold; not counted against `ok`). */
  applicable: boolean;
  groups: number;
  /** Groups with more than N non-zero weights. */
  violations: number;
  ok: boolean;
}

/** What `checkNM` returns. */
export interface NMCheck {
  /** True when at least one layer can hold the pattern and every such layer does. */
  ok: boolean;
  n: number;
  m: number;
  layers: NMCheckRow[];
}

/**
 * Checks that every prunable weight (the same set `prune.nm` prunes with the same `exclude` options) has at most
 * N non-zero values in each group of M along its input-channel axis; reports each layer.
 *
 * @example
 * ```ts
 * const { ok, layers } = checkNM(model, 2, 4);
 * layers.filter((l) => !l.ok).map((l) => `${l.node}: ${l.violations} groups over 2 of 4`);
 * ```
 */
export function checkNM(model: Model, n = 2, m = 4, options: { exclude?: string[]; excludeFirstLast?: boolean } = {}): NMCheck {
  const weights = selectWeights(model, { exclude: options.exclude ?? [], excludeFirstLast: options.excludeFirstLast ?? false }, []);
  const layers = weights.map((w): NMCheckRow => {
    const values = readFloat32(w.value.initializer!);
    const applicable = w.view.k % m === 0;
    let groups = 0, violations = 0;
    if (applicable) {
      forEachGroup(w, m, (idx) => {
        groups++;
        let nz = 0;
        for (const i of idx) if (values[i] !== 0) nz++;
        if (nz > n) violations++;
      });
    }
    return { node: nodesLabel(w), opType: w.opType, weight: w.value.name, k: w.view.k, applicable, groups, violations, ok: applicable && violations === 0 };
  });
  const applicable = layers.filter((l) => l.applicable);
  return { ok: applicable.length > 0 && applicable.every((l) => l.ok), n, m, layers };
}
