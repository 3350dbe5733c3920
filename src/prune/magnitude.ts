/**
 * `prune.magnitude`: unstructured pruning. Sets the lowest-scoring elements of the prunable weights (Conv,
 * ConvTranspose, Gemm and MatMul initializers; see `common.ts`) to zero.
 *
 * - Score: |w| (default), or |w| × ‖x_k‖₂ (`score: 'activation'`, as in Wanda), where ‖x_k‖₂ is the L2 norm of the
 *   input channel (feature) k the element multiplies, over calibration samples (and spatial positions).
 * - Scope `global` (default): one ranking over every prunable element; `layer`: each weight at the same sparsity,
 *   the rounding spread so the total is still exact (largest remainder); `layerSparsity` sets layers one by one.
 * - Exact: exactly round(sparsity × prunable elements) elements are zero afterwards (when there were not already
 *   more); ties are broken by position (weights in graph order, elements in memory order), so runs repeat. Zeros
 *   score 0 and are taken first, so pruning a pruned model again to the same sparsity changes nothing.
 * - A weight shared by several nodes is ranked and pruned once.
 *
 * Zeros do not make onnxruntime's CPU kernels faster: it has no sparse Conv or Gemm kernel, so the gain is in file
 * size (see `storage.ts`), not latency.
 */
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import { datasetFeeds } from '../eval/accuracy.js';
import type { Model, Value } from '../onnx/ir.js';
import { Runner, type RunTensor } from '../onnx/runner.js';
import { densifySparseInitializers } from './storage.js';
import type { Pass, PassContext, PassResult } from '../pass.js';
import {
  PRUNABLE_OPS,
  apportion,
  checkNodeNames,
  copyModel,
  countParams,
  countZeros,
  dataOption,
  excludeFirstLastOption,
  excludeOption,
  findPrunableWeights,
  firstAndLast,
  layerSparsityOption,
  openData,
  readFloat32,
  resolveExclude,
  smallestK,
  zeroElements,
  type PruneLayerRow,
  type PruneReport,
  type PrunableWeight,
} from './common.js';

/**
 * Options of `prune.magnitude`.
 *
 * @example
 * ```ts
 * magnitudeOptions.parse({ sparsity: 0.8, scope: 'layer', exclude: ['Gemm'] });
 * ```
 */
export const magnitudeOptions = z
  .object({
    sparsity: z.number().min(0).max(1).default(0.5).describe('Fraction of the prunable weight elements set to zero (0..1), exact over the prunable set'),
    scope: z.enum(['global', 'layer']).default('global').describe("'global': one ranking over all prunable weights; 'layer': every weight at the same sparsity"),
    layerSparsity: layerSparsityOption,
    score: z.enum(['magnitude', 'activation']).default('magnitude').describe("'magnitude': |w|; 'activation': |w| × L2 norm of the input channel it multiplies, over calibration samples"),
    calibration: dataOption('calibration').optional(),
    calibrationSamples: z.number().int().min(1).default(128).describe("Calibration samples for score 'activation'"),
    exclude: excludeOption,
    excludeFirstLast: excludeFirstLastOption,
    opTypes: z.array(z.enum(PRUNABLE_OPS)).default([...PRUNABLE_OPS]).describe('Op types whose weights are pruned'),
  })
  .superRefine((o, ctx) => {
    if (o.score === 'activation' && o.calibration === undefined) {
      ctx.addIssue({ code: 'custom', path: ['calibration'], message: "score 'activation' needs calibration data (a dataset descriptor path or a Dataset)" });
    }
    if (o.calibration !== undefined && o.score !== 'activation') ctx.addIssue({ code: 'custom', path: ['calibration'], message: "calibration applies to score 'activation' only" });
  });
export type MagnitudeOptions = z.input<typeof magnitudeOptions>;

/** What the magnitude and n:m passes return: the pass result and the report. */
export interface PrunePassResult extends PassResult {
  report: PruneReport;
  /** The zeroed positions per weight name (1 = pruned), so a fine-tuned model can be masked again. */
  masks?: Map<string, Uint8Array>;
}

/** The weights a pass prunes, after `exclude` and `excludeFirstLast`. */
export function selectWeights(model: Model, o: { exclude: string[]; excludeFirstLast: boolean; opTypes?: readonly string[] }, notes: string[]): PrunableWeight[] {
  const exclude = resolveExclude(model, o.exclude);
  const ops = new Set<string>(o.opTypes ?? PRUNABLE_OPS);
  if (o.excludeFirstLast) {
    const ends = firstAndLast(model, (n) => ops.has(n.opType) && !!n.inputs[1]?.initializer);
    for (const n of ends) {
      exclude.add(n);
      notes.push(`left ${n} dense: first or last prunable layer (excludeFirstLast)`);
    }
  }
  return findPrunableWeights(model, { exclude, opTypes: o.opTypes }, notes);
}

/** A weight's display name: the nodes that read it. */
export function nodesLabel(w: PrunableWeight): string {
  return w.nodes.map((n) => n.name || `(${n.opType})`).join(', ');
}

/**
 * The L2 norm of each input channel of each prunable node's first input, over `samples` calibration samples
 * (channels on the axis the node's weight K indexes; all other axes summed over).
 */
export async function activationNorms(model: Model, weights: readonly PrunableWeight[], data: Parameters<typeof datasetFeeds>[1], samples: number): Promise<Map<Value, Float64Array>> {
  const inputs = new Map<Value, number>();
  for (const w of weights) {
    for (const n of w.nodes) {
      const x = n.inputs[0];
      if (!x) continue;
      let axis = w.inputAxis;
      if (axis < 0) {
        const r = x.shape?.length;
        if (r === undefined) throw new OptionsError(`score 'activation': the rank of "${x.name}", the input of ${n}, is unknown (run inferShapes first or use score 'magnitude')`);
        axis = r - 1;
      }
      inputs.set(x, axis);
    }
  }
  const extra = [...inputs.keys()].filter((v) => !v.isGraphInput).map((v) => v.name);
  // 'extended': onnxruntime 1.30 can crash reading intermediate outputs under 'all' (see recalibrate.ts)
  const runner = await Runner.create(model, { extraOutputs: extra, graphOptimizationLevel: 'extended' });
  const sums = new Map<Value, Float64Array>();
  try {
    for await (const { feeds } of datasetFeeds(runner, data, { model, batchSize: 32, limit: samples })) {
      const out = extra.length ? await runner.run(feeds, extra) : {};
      for (const [v, axis] of inputs) {
        const t: RunTensor | undefined = v.isGraphInput ? feeds[v.name] : out[v.name];
        if (!t) continue;
        const dims = t.dims;
        const c = dims[axis]!;
        const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
        let acc = sums.get(v);
        if (!acc) sums.set(v, (acc = new Float64Array(c)));
        const d = t.data as Float32Array;
        for (let i = 0; i < d.length; i++) {
          const ch = Math.floor(i / inner) % c;
          acc[ch]! += d[i]! * d[i]!;
        }
      }
    }
  } finally {
    await runner.release();
  }
  return sums;
}

/** Scores of a weight's elements: |w|, times the norm of the input channel each multiplies when norms are given. */
function scoresOf(w: PrunableWeight, values: Float32Array, norms?: Map<Value, Float64Array>): Float32Array {
  const s = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) s[i] = Math.abs(values[i]!);
  if (!norms) return s;
  // the squared norms of every reader's input, summed (a shared weight multiplies each)
  const { outer, k, inner, groups, outPerGroup } = w.view;
  const channels = groups > 1 ? groups * k : k;
  const sq = new Float64Array(channels);
  for (const n of w.nodes) {
    const acc = n.inputs[0] && norms.get(n.inputs[0]);
    if (!acc || acc.length !== channels) continue;
    for (let c = 0; c < channels; c++) sq[c]! += acc[c]!;
  }
  for (let o = 0; o < outer; o++) {
    const base = groups > 1 ? Math.floor(o / outPerGroup) * k : 0;
    for (let kk = 0; kk < k; kk++) {
      const f = Math.sqrt(sq[base + kk]!);
      const off = (o * k + kk) * inner;
      for (let i = 0; i < inner; i++) s[off + i]! *= f;
    }
  }
  return s;
}

/** Per-weight counts of elements to zero, exact in total where the options allow it. */
function targetCounts(weights: readonly PrunableWeight[], sizes: number[], o: z.output<typeof magnitudeOptions>): number[] | undefined {
  const per = o.layerSparsity;
  if (per) {
    return weights.map((w, i) => {
      const named = w.nodes.map((n) => per[n.name]).find((x) => x !== undefined);
      return Math.round((named ?? o.sparsity) * sizes[i]!);
    });
  }
  if (o.scope === 'layer') {
    const total = Math.round(o.sparsity * sizes.reduce((a, b) => a + b, 0));
    return apportion(sizes, o.sparsity, total);
  }
  return undefined; // global
}

/** Prunes `model` (a copy the caller owns) in place; returns the report and the masks. */
export async function magnitudeInPlace(model: Model, o: z.output<typeof magnitudeOptions>, ctx: PassContext = {}): Promise<PrunePassResult> {
  const notes: string[] = [];
  if (o.layerSparsity) checkNodeNames(model, Object.keys(o.layerSparsity), 'layerSparsity');
  const densified = densifyForPruning(model, notes);
  const paramsBefore = countParams(model);
  const weights = selectWeights(model, o, notes);
  const values = weights.map((w) => readFloat32(w.value.initializer!));
  const sizes = values.map((v) => v.length);
  let norms: Map<Value, Float64Array> | undefined;
  if (o.score === 'activation' && weights.length) {
    const data = await openData(o.calibration!, model);
    norms = await activationNorms(model, weights, data, o.calibrationSamples);
  }
  ctx.signal?.throwIfAborted();
  const scores = weights.map((w, i) => scoresOf(w, values[i]!, norms));
  const counts = targetCounts(weights, sizes, o);
  let masks: Uint8Array[];
  if (counts) {
    masks = scores.map((s, i) => smallestK(s, counts[i]!));
  } else {
    const all = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const s of scores) {
      all.set(s, at);
      at += s.length;
    }
    const mask = smallestK(all, Math.round(o.sparsity * all.length));
    at = 0;
    masks = sizes.map((n) => {
      const m = mask.subarray(at, at + n);
      at += n;
      return m;
    });
  }
  const r = applyMasks(model, weights, values, masks, 'magnitude', paramsBefore, notes);
  return densified ? { ...r, modified: true } : r;
}

/**
 * Turns sparse initializers back into dense ones so their weights can be pruned (the passes read dense weights);
 * `sparseStorage` writes them sparse again. Returns whether there were any.
 */
export function densifyForPruning(model: Model, notes: string[]): boolean {
  const n = densifySparseInitializers(model);
  if (n) notes.push(`read ${n} sparse initializer(s) as dense weights (write them sparse again with sparse storage)`);
  return n > 0;
}

/** Zeroes the masked elements of each weight (a new initializer only where something changes) and builds the report. */
export function applyMasks(
  model: Model,
  weights: readonly PrunableWeight[],
  values: readonly Float32Array[],
  masks: readonly Uint8Array[],
  method: 'magnitude' | 'n:m',
  paramsBefore: number,
  notes: string[],
  rowNotes: ReadonlyMap<PrunableWeight, string> = new Map(),
): PrunePassResult {
  let modified = false;
  const rows: PruneLayerRow[] = [];
  const byName = new Map<string, Uint8Array>();
  let zerosBefore = 0, zerosAfter = 0, prunable = 0;
  weights.forEach((w, i) => {
    const v = values[i]!;
    const mask = masks[i]!;
    const before = v.length - countNonZero(v);
    let changes = 0;
    for (let j = 0; j < v.length; j++) if (mask[j] && v[j] !== 0) changes++;
    const t = w.value.initializer!;
    if (changes) {
      // the initializer is replaced, not edited: tensors are immutable, and the writer re-encodes new ones
      w.value.initializer = zeroElements(t, mask);
      modified = true;
    }
    const after = changes ? countZeros(w.value.initializer!) : before;
    byName.set(w.value.name, mask);
    zerosBefore += before;
    zerosAfter += after;
    prunable += v.length;
    const row: PruneLayerRow = { node: nodesLabel(w), opType: w.opType, weight: w.value.name, params: [v.length, v.length], nonzero: [v.length - before, v.length - after] };
    const note = rowNotes.get(w);
    if (note) row.note = note;
    rows.push(row);
  });
  const report: PruneReport = {
    method,
    layers: rows,
    totals: { prunableParams: prunable, zeros: [zerosBefore, zerosAfter], sparsity: prunable ? zerosAfter / prunable : 0, modelParams: [paramsBefore, countParams(model)] },
  };
  if (!weights.length) notes.push('no prunable weights: nothing was pruned (prunable weights are constant float weights of Conv, ConvTranspose, Gemm and MatMul)');
  return { model, modified, notes, report, masks: byName };
}

function countNonZero(v: Float32Array): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) n++;
  return n;
}

/**
 * The `prune.magnitude` pass (returns a new model). See the top of this file for what it does.
 *
 * @example
 * ```ts
 * const r = (await runPass(magnitudePass, model, { sparsity: 0.8 })) as PrunePassResult;
 * r.report.totals.sparsity; // 0.8
 * ```
 */
export const magnitudePass: Pass<typeof magnitudeOptions> = {
  name: 'prune.magnitude',
  description: 'Sets the smallest-magnitude weights of Conv, ConvTranspose, Gemm and MatMul to zero, to an exact sparsity',
  inPlace: false,
  options: magnitudeOptions,
  run(model, options, ctx): Promise<PrunePassResult> {
    return magnitudeInPlace(copyModel(model), options, ctx);
  },
};

