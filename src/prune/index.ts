/**
 * Pruning: the `prune.*` passes, their plain-function wrappers, and `prune(model, options)`, which adds
 * sensitivity plans, fine-tuning and sparse storage around them.
 *
 * | pass | function | what |
 * |---|---|---|
 * | `prune.magnitude` | `pruneMagnitude` | unstructured: the smallest weights set to zero, exact sparsity |
 * | `prune.nm` | `pruneNM` | N:M semi-structured (2:4) along the input channels; `checkNM` validates |
 * | `prune.channels` | `pruneChannels` | structured: whole channels removed, the model rewritten smaller |
 *
 * What gets faster: only `prune.channels` makes onnxruntime's CPU kernels faster (the tensors are smaller).
 * Unstructured and 2:4 zeros do not: onnxruntime has no sparse CPU Conv or Gemm, and it densifies sparse
 * initializers when loading. Their gain is the file (`toSparseStorage`, gzip).
 *
 * All passes return new models (`inPlace: false`).
 */
import { z } from 'zod';
import { formatBytes, formatCount, formatPercent, formatTable } from '../onnx/inspect.js';
import type { Model } from '../onnx/ir.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../onnx/runner.js';
import { parseOptions, runPass, type Pass, type PassContext } from '../pass.js';
import { channelsInPlace, channelsOptions, channelsPass, type ChannelGroup, type ChannelsOptions, type ChannelsPassResult } from './channels.js';
import { PRUNABLE_OPS, copyModel, countParams, dataOption, excludeFirstLastOption, zeroElements, type PruneReport } from './common.js';
import { magnitudeInPlace, magnitudeOptions, magnitudePass, type MagnitudeOptions, type PrunePassResult } from './magnitude.js';
import { nmInPlace, nmOptions, nmPass, type NMOptions } from './nm.js';
import { analyzeSensitivity, planFromSensitivity, type SensitivityPlan, type SensitivityResult } from './sensitivity.js';
import { toSparseStorage, type StorageReport } from './storage.js';

export { channelsPass, channelsOptions, planChannels, type ChannelGroup, type ChannelsOptions, type ChannelsPassResult } from './channels.js';
export { magnitudePass, magnitudeOptions, type MagnitudeOptions, type PrunePassResult } from './magnitude.js';
export { nmPass, nmOptions, checkNM, parsePattern, type NMOptions, type NMCheck, type NMCheckRow } from './nm.js';
export { analyzeSensitivity, planFromSensitivity, type SensitivityOptions, type SensitivityPlan, type SensitivityResult, type LayerSensitivity } from './sensitivity.js';
export { toSparseStorage, densifySparseInitializers, modelSize, sparseStorageOptions, type SparseStorageOptions, type StorageReport, type StorageRow } from './storage.js';
export { PRUNABLE_OPS, smallestK, type PruneLayerRow, type PruneReport } from './common.js';

/**
 * Every pruning pass: the explicit list that registries, docs and the CLI read.
 *
 * @example
 * ```ts
 * for (const pass of PRUNE_PASSES) console.log(pass.name, optionsJsonSchema(pass));
 * ```
 */
export const PRUNE_PASSES: readonly Pass[] = [magnitudePass, nmPass, channelsPass] as Pass[];

/**
 * Unstructured magnitude pruning to an exact sparsity (returns a new model).
 *
 * @example
 * ```ts
 * const { model: pruned, report } = await pruneMagnitude(model, { sparsity: 0.8 });
 * report.totals.sparsity; // 0.8
 * ```
 */
export async function pruneMagnitude(model: Model, options: MagnitudeOptions = {}, ctx: PassContext = {}): Promise<PrunePassResult> {
  return (await runPass(magnitudePass, model, options, ctx)) as PrunePassResult;
}

/**
 * N:M semi-structured pruning, 2:4 by default (returns a new model).
 *
 * @example
 * ```ts
 * const { model: pruned } = await pruneNM(model, { pattern: '2:4' });
 * checkNM(pruned, 2, 4).ok; // true
 * ```
 */
export async function pruneNM(model: Model, options: NMOptions = {}, ctx: PassContext = {}): Promise<PrunePassResult> {
  return (await runPass(nmPass, model, options, ctx)) as PrunePassResult;
}

/**
 * Structured channel pruning (returns a new, smaller model).
 *
 * @example
 * ```ts
 * const { model: small, report } = await pruneChannels(model, { sparsity: 0.5 });
 * report.totals.modelParams; // [before, after]
 * ```
 */
export async function pruneChannels(model: Model, options: ChannelsOptions = {}, ctx: PassContext = {}): Promise<ChannelsPassResult> {
  return (await runPass(channelsPass, model, options, ctx)) as ChannelsPassResult;
}

// ---------------------------------------------------------------------------------------------------------------
// prune()

/** Pruning methods of `prune()`. */
export const PRUNE_METHODS = ['magnitude', 'n:m', 'channels'] as const;
export type PruneMethod = (typeof PRUNE_METHODS)[number];

/**
 * Fine-tunes a pruned model; `original` is the unpruned model (a teacher for distillation). The result must have
 * the pruned model's structure: magnitude and n:m masks are applied again afterwards, so zeros stay zeros.
 */
export type Finetune = (pruned: Model, original: Model) => Promise<Model>;

/**
 * Options of `prune()`: the method, the chosen pass's options (fields of other methods are refused), a plan, fine
 * tuning and storage.
 *
 * @example
 * ```ts
 * pruneOptions.parse({ method: 'channels', sparsity: 0.5, plan: 'sensitivity', data: 'fixtures/fmnist-test-256/cnn.json' });
 * ```
 */
export const pruneOptions = z
  .object({
    method: z.enum(PRUNE_METHODS).default('magnitude').describe("'magnitude' (unstructured), 'n:m' (semi-structured) or 'channels' (structured)"),
    sparsity: z.number().min(0).max(1).optional().describe('Target sparsity (0..1): weights zeroed (magnitude) or channels removed per group (channels); default 0.5'),
    pattern: z.string().optional().describe("n:m: the pattern, default '2:4'"),
    scope: z.enum(['global', 'layer']).optional().describe("magnitude: one ranking over all weights ('global', default) or per layer"),
    score: z.enum(['magnitude', 'activation']).optional().describe("magnitude: |w| (default) or |w| × input-channel norm over calibration data"),
    calibration: dataOption('calibration').optional(),
    calibrationSamples: z.number().int().min(1).optional().describe("Calibration samples (magnitude score 'activation': default 128; channels: default 256)"),
    criterion: z.enum(['l1', 'l2', 'activation']).optional().describe("channels: how channels are ranked (default 'activation' with calibration data, else 'l1')"),
    batchNormScale: z.boolean().optional().describe('channels: rank by |gamma| of a following BatchNormalization (default true)'),
    biasCompensation: z.boolean().optional().describe('channels, with calibration data: fold removed channels’ means into the next biases (default true)'),
    layerSparsity: z.record(z.string(), z.number().min(0).max(1)).optional().describe('Per-layer sparsity by node name (magnitude, channels)'),
    exclude: z.array(z.string().min(1)).optional().describe('Node names, op types or glob patterns of nodes to leave as they are'),
    excludeFirstLast: excludeFirstLastOption.optional(),
    opTypes: z.array(z.enum(PRUNABLE_OPS)).optional().describe('magnitude, n:m: op types whose weights are pruned'),
    plan: z.enum(['uniform', 'sensitivity']).default('uniform').describe("'uniform': every layer at the target; 'sensitivity': per-layer sparsities from measured accuracy"),
    data: dataOption('data').optional(),
    sensitivityLevels: z.array(z.number().gt(0).max(1)).optional().describe('Sparsities each layer is tried at (default 0.25, 0.5, 0.75, 0.9)'),
    sensitivitySamples: z.number().int().min(1).optional().describe('Samples of data each trial is evaluated on (default 512)'),
    sparseStorage: z.enum(['auto', 'on', 'off']).default('off').describe("magnitude, n:m: write pruned weights as sparse_initializer ('auto': where smaller)"),
    sparseIndices: z
      .enum(['int64', 'compact'])
      .optional()
      .describe("sparse storage: int64 indices (standard, default) or the smallest integer type (onnxruntime reads it; onnx's checker does not)"),
    finetune: z
      .any()
      .superRefine((v, ctx) => {
        if (typeof v !== 'function') ctx.addIssue({ code: 'custom', message: `Expected a function (pruned, original) => Promise<Model> for finetune but received ${typeof v}` });
      })
      .optional()
      .describe('Fine-tunes the pruned model (e.g. distillation from the original)') as unknown as z.ZodOptional<z.ZodType<Finetune, Finetune>>,
    ep: z.enum(EXECUTION_PROVIDERS as unknown as [ExecutionProvider, ...ExecutionProvider[]]).optional().describe('Execution provider for sensitivity and calibration runs'),
    threads: z.number().int().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    const only: Record<string, PruneMethod[]> = {
      pattern: ['n:m'],
      scope: ['magnitude'],
      score: ['magnitude'],
      calibration: ['magnitude', 'channels'],
      calibrationSamples: ['magnitude', 'channels'],
      criterion: ['channels'],
      batchNormScale: ['channels'],
      biasCompensation: ['channels'],
      layerSparsity: ['magnitude', 'channels'],
      opTypes: ['magnitude', 'n:m'],
      sparsity: ['magnitude', 'channels'],
    };
    for (const [key, methods] of Object.entries(only)) {
      if ((o as Record<string, unknown>)[key] !== undefined && !methods.includes(o.method)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to method ${methods.map((m) => `'${m}'`).join(' or ')}, not '${o.method}'` });
      }
    }
    if (o.plan === 'sensitivity') {
      if (o.method === 'n:m') ctx.addIssue({ code: 'custom', path: ['plan'], message: "plan 'sensitivity' applies to method 'magnitude' or 'channels' (n:m fixes every layer's sparsity)" });
      if (o.data === undefined) ctx.addIssue({ code: 'custom', path: ['data'], message: "plan 'sensitivity' needs data: a dataset descriptor path or a Dataset" });
      if (o.layerSparsity !== undefined) ctx.addIssue({ code: 'custom', path: ['layerSparsity'], message: "plan 'sensitivity' computes layerSparsity: give one or the other" });
    } else {
      for (const key of ['data', 'sensitivityLevels', 'sensitivitySamples'] as const) {
        if (o[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to plan 'sensitivity'` });
      }
    }
    if (o.sparseIndices !== undefined && o.sparseStorage === 'off') ctx.addIssue({ code: 'custom', path: ['sparseIndices'], message: "sparseIndices applies when sparseStorage is 'auto' or 'on'" });
    if (o.sparseStorage !== 'off' && o.method === 'channels') {
      ctx.addIssue({ code: 'custom', path: ['sparseStorage'], message: "sparseStorage applies to method 'magnitude' or 'n:m' (channel pruning leaves no zeros to store)" });
    }
  });
export type PruneOptions = z.input<typeof pruneOptions>;

/** What `prune()` reports. */
export interface PruneResultReport extends PruneReport {
  /** The sensitivity measurements and the plan made from them, with plan 'sensitivity'. */
  sensitivity?: { result: SensitivityResult; plan: SensitivityPlan };
  /** Channel groups (channels). */
  groups?: ChannelGroup[];
  /** Sparse storage: weights stored sparse, raw and gzip bytes (magnitude, n:m, sparseStorage not 'off'). */
  storage?: StorageReport;
  /** Whether `finetune` ran. */
  finetuned: boolean;
  notes: string[];
  seconds: number;
}

/** What `prune()` returns. */
export interface PruneResult {
  model: Model;
  modified: boolean;
  report: PruneResultReport;
}

/** Progress of `prune()`'s long stages. */
export interface PruneHooks {
  onProgress?: (stage: 'sensitivity', done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Prunes a model: optionally plans per-layer sparsities from measured sensitivity, runs the method's pass,
 * fine-tunes when given a `finetune` function (masks re-applied after it), and stores pruned weights sparse when
 * asked. Returns a new model; `model` is not changed.
 *
 * @example
 * ```ts
 * const { model: pruned, report } = await prune(model, { method: 'channels', sparsity: 0.5 });
 * console.log(formatPruneReport(report));
 * ```
 */
export async function prune(model: Model, options: PruneOptions = {}, hooks: PruneHooks = {}): Promise<PruneResult> {
  const started = performance.now();
  const o = parseOptions(pruneOptions, options, 'prune');
  const passOptions: Record<string, unknown> = {};
  const copyField = (k: keyof typeof o) => {
    if (o[k] !== undefined) passOptions[k] = o[k];
  };
  for (const k of ['sparsity', 'pattern', 'scope', 'score', 'calibration', 'calibrationSamples', 'criterion', 'batchNormScale', 'biasCompensation', 'layerSparsity', 'exclude', 'excludeFirstLast', 'opTypes'] as const) {
    copyField(k);
  }
  const notes: string[] = [];
  let sensitivity: PruneResultReport['sensitivity'];
  if (o.plan === 'sensitivity') {
    const method = o.method as 'magnitude' | 'channels';
    const result = await analyzeSensitivity(model, {
      method,
      data: o.data!,
      levels: o.sensitivityLevels,
      samples: o.sensitivitySamples,
      ep: o.ep,
      threads: o.threads,
      passOptions: { ...passOptions, sparsity: 0 },
      onProgress: hooks.onProgress && ((d, t) => hooks.onProgress!('sensitivity', d, t)),
    });
    const plan = planFromSensitivity(result, o.sparsity ?? 0.5);
    passOptions.layerSparsity = plan.layerSparsity;
    if (method === 'magnitude') passOptions.scope = 'layer';
    if (plan.achieved + 1e-9 < plan.target) notes.push(`the sensitivity levels reach ${formatPercent(plan.achieved)} of the units, short of the target ${formatPercent(plan.target)}`);
    sensitivity = { result, plan };
  }
  const ctx: PassContext = { signal: hooks.signal };
  const copy = copyModel(model);
  let r: PrunePassResult | ChannelsPassResult;
  if (o.method === 'magnitude') r = await magnitudeInPlace(copy, parseOptions(magnitudeOptions, passOptions, 'prune.magnitude'), ctx);
  else if (o.method === 'n:m') r = nmInPlace(copy, parseOptions(nmOptions, passOptions, 'prune.nm'), ctx);
  else r = await channelsInPlace(copy, parseOptions(channelsOptions, passOptions, 'prune.channels'), ctx);
  notes.push(...(r.notes ?? []));
  let out = r.model;
  let finetuned = false;
  if (o.finetune) {
    out = await o.finetune(out, model);
    finetuned = true;
    // fine-tuning moves every weight: zeros of magnitude and n:m are applied again (not kept during training)
    const masks = 'masks' in r ? r.masks : undefined;
    if (masks) notes.push(...reapplyMasks(out, masks));
    r.report.totals.modelParams = [r.report.totals.modelParams[0], countParams(out)];
  }
  let storage: StorageReport | undefined;
  if (o.sparseStorage !== 'off') {
    storage = toSparseStorage(out, { mode: o.sparseStorage, ...(o.sparseIndices ? { indices: o.sparseIndices } : {}) });
    notes.push(...storage.notes);
  }
  const report: PruneResultReport = { ...r.report, finetuned, notes, seconds: (performance.now() - started) / 1000 };
  if (sensitivity) report.sensitivity = sensitivity;
  if ('groups' in r) report.groups = r.groups;
  if (storage) report.storage = storage;
  return { model: out, modified: r.modified || finetuned || (storage?.weights.some((w) => w.stored === 'sparse') ?? false), report };
}

/** Zeroes again, after fine-tuning, every position pruning zeroed (by weight name). Returns notes for weights it cannot find. */
function reapplyMasks(model: Model, masks: ReadonlyMap<string, Uint8Array>): string[] {
  const notes: string[] = [];
  for (const [name, mask] of masks) {
    const v = model.graph.initializers.get(name);
    const t = v?.initializer;
    if (!v || !t || t.size !== mask.length) {
      notes.push(`after fine-tuning, weight "${name}" is missing or changed shape: its pruning mask was not applied again`);
      continue;
    }
    v.initializer = zeroElements(t, mask);
  }
  return notes;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/**
 * A human-readable report: the per-layer table (weights or channels, before → after), totals and notes.
 *
 * @example
 * ```ts
 * console.log(formatPruneReport((await prune(model, { sparsity: 0.8 })).report));
 * ```
 */
export function formatPruneReport(r: PruneReport & Partial<Pick<PruneResultReport, 'storage' | 'sensitivity' | 'notes' | 'finetuned'>>): string {
  const lines: string[] = [];
  const arrow = (x: [number, number]) => (x[0] === x[1] ? formatCount(x[0]) : `${formatCount(x[0])} → ${formatCount(x[1])}`);
  const t = r.totals;
  if (r.method === 'channels') {
    const rows = [['layer', 'op', 'in channels', 'out channels', 'params', 'note']];
    for (const l of r.layers) rows.push([l.node, l.opType, arrow(l.channelsIn!), arrow(l.channelsOut!), arrow(l.params), l.note ?? '']);
    lines.push(formatTable(rows, { right: [2, 3, 4] }));
    lines.push('', `Channels: ${arrow(t.channels ?? [0, 0])} in prunable groups (${formatPercent(t.sparsity)} removed)`);
  } else {
    const rows = [['layer', 'op', 'weight', 'params', 'non-zero', 'sparsity', 'note']];
    for (const l of r.layers) {
      const [nz0, nz1] = l.nonzero!;
      rows.push([l.node, l.opType, l.weight ?? '', formatCount(l.params[0]), arrow([nz0, nz1]), formatPercent(1 - nz1 / Math.max(l.params[0], 1)), l.note ?? '']);
    }
    lines.push(formatTable(rows, { right: [3, 4, 5] }));
    lines.push('', `Sparsity: ${formatPercent(t.sparsity)} of ${formatCount(t.prunableParams)} prunable weights are zero (${formatCount(t.zeros[0])} → ${formatCount(t.zeros[1])} zeros)`);
  }
  const [p0, p1] = t.modelParams;
  lines.push(`Parameters: ${arrow(t.modelParams)}${p0 ? ` (${(p1 / p0).toFixed(3)}×)` : ''}`);
  if (r.sensitivity) {
    const s = r.sensitivity;
    lines.push('', `Sensitivity plan (${s.result.metric === 'top1' ? 'top-1' : 'agreement'} on ${s.result.samples} samples, baseline ${formatPercent(s.result.baseline)}):`);
    const rows = [['layer', ...s.result.layers[0]?.points.map((p) => `@${p.sparsity}`) ?? [], 'planned']];
    for (const l of s.result.layers) rows.push([l.layer, ...l.points.map((p) => formatPercent(p.score, 1)), formatPercent(s.plan.layerSparsity[l.layer] ?? 0, 1)]);
    lines.push(formatTable(rows, { indent: '  ', right: rows[0]!.map((_, i) => i).slice(1) }));
  }
  if (r.storage) {
    const st = r.storage;
    const n = st.weights.filter((w) => w.stored === 'sparse').length;
    lines.push(
      '',
      `Storage (${st.mode}, ${st.indices} indices): ${n} of ${st.weights.length} weights as sparse_initializer; file ${formatBytes(st.rawBytes[0])} → ${formatBytes(st.rawBytes[1])} (${(st.rawBytes[1] / st.rawBytes[0]).toFixed(2)}×), gzip ${formatBytes(st.gzipBytes[0])} → ${formatBytes(st.gzipBytes[1])}`,
    );
  }
  if (r.finetuned) lines.push('', `Fine-tuned after pruning${r.method === 'channels' ? '' : ' (the pruned positions zeroed again afterwards)'}.`);
  if (r.method !== 'channels') lines.push('', 'Zeros do not make onnxruntime’s CPU kernels faster (no sparse Conv/Gemm kernels): expect the same latency; the gain is file size.');
  const notes = r.notes ?? [];
  if (notes.length) lines.push('', 'Notes:', ...notes.map((n) => `  - ${n}`));
  return lines.join('\n');
}
