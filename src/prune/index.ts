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
 *
 * Recovering accuracy (`prune()`): channel pruning with calibration data recalibrates each Conv's output statistics
 * (`recalibrate.ts`); `finetune` distills the original into the pruned model (`finetune.ts`: masks held, identity
 * BatchNormalization inserted for training and folded back); `schedule: 'polynomial'` reaches the target over
 * several prune → fine-tune steps (TF Model Optimization's PolynomialDecay, power 3).
 */
import { z } from 'zod';
import { formatBytes, formatCount, formatPercent, formatTable } from '../onnx/inspect.js';
import type { Model } from '../onnx/ir.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../onnx/runner.js';
import { parseOptions, runPass, type Pass, type PassContext } from '../pass.js';
import { channelsInPlace, channelsOptions, channelsPass, planChannels, type ChannelGroup, type ChannelsOptions, type ChannelsPassResult } from './channels.js';
import { PRUNABLE_OPS, copyModel, countParams, dataOption, excludeFirstLastOption, openData, zeroElements, type DataSource, type PruneLayerRow, type PruneReport } from './common.js';
import { finetuneOptions, finetunePruned, type FinetuneOptions } from './finetune.js';
import { magnitudeInPlace, magnitudeOptions, magnitudePass, type MagnitudeOptions, type PrunePassResult } from './magnitude.js';
import { nmInPlace, nmOptions, nmPass, type NMOptions } from './nm.js';
import { analyzeSensitivity, planFromSensitivity, type SensitivityPlan, type SensitivityResult } from './sensitivity.js';
import { toSparseStorage, type StorageReport } from './storage.js';

export { channelsPass, channelsOptions, planChannels, removedCount, type ChannelGroup, type ChannelsOptions, type ChannelsPassResult } from './channels.js';
export { magnitudePass, magnitudeOptions, type MagnitudeOptions, type PrunePassResult } from './magnitude.js';
export { nmPass, nmOptions, checkNM, parsePattern, type NMOptions, type NMCheck, type NMCheckRow } from './nm.js';
export { analyzeSensitivity, planFromSensitivity, type SensitivityOptions, type SensitivityPlan, type SensitivityResult, type LayerSensitivity } from './sensitivity.js';
export { toSparseStorage, densifySparseInitializers, modelSize, sparseStorageOptions, type SparseStorageOptions, type StorageReport, type StorageRow } from './storage.js';
export { PRUNABLE_OPS, smallestK, type PruneLayerRow, type PruneReport } from './common.js';
export { finetunePruned, finetuneOptions, insertIdentityBatchNorm, type FinetuneOptions, type FinetuneHooks, type FinetuneResult } from './finetune.js';
export { recalibrate, channelMoments, recalibrableConvs, type ChannelMoments } from './recalibrate.js';

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

/** What a `Finetune` function is told besides the models. */
export interface FinetuneInfo {
  /** Per weight name, 1 where the weight was pruned and must stay zero (magnitude, n:m): hold them during training. */
  masks?: ReadonlyMap<string, Uint8Array>;
  /** The schedule step (1-based) and the number of steps. */
  step: number;
  steps: number;
}

/**
 * Fine-tunes a pruned model; `original` is the unpruned model (a teacher for distillation). The result must have
 * the pruned model's structure. Magnitude and n:m masks are applied again afterwards as well, so zeros stay zeros
 * even if the function does not hold them.
 */
export type Finetune = (pruned: Model, original: Model, info: FinetuneInfo) => Promise<Model>;

/** `finetune` as data: the training data and `finetunePruned`'s options. */
export type FinetuneSpec = FinetuneOptions & { data: DataSource };

/** Schedules of `prune()`: all at once, or over several prune → fine-tune steps. */
export const PRUNE_SCHEDULES = ['oneshot', 'polynomial'] as const;

/**
 * The sparsity target of step `t` (1-based) of `n` under polynomial decay (TensorFlow Model Optimization's
 * `PolynomialDecay`, power 3): s_t = s_f + (s_i − s_f)(1 − t/n)³, which reaches s_f at t = n.
 *
 * @example
 * ```ts
 * polynomialSparsity(0.8, 1, 4); // 0.4625
 * ```
 */
export function polynomialSparsity(final: number, t: number, n: number, initial = 0): number {
  return t >= n ? final : final + (initial - final) * (1 - t / n) ** 3;
}

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
    sparseStorage: z.enum(['auto', 'on', 'off']).default('off').describe("magnitude, n:m: store pruned weights as their non-zeros ('auto': where smaller; see sparseIndices)"),
    sparseIndices: z
      .enum(['auto', 'int64', 'bitmask', 'compact'])
      .optional()
      .describe(
        "sparse storage form: 'auto' (default: bitmask from opset 11, else int64), 'bitmask' (values + 1 bit per element, standard ops), 'int64' (sparse_initializer), 'compact' (sparse_initializer with small indices: onnxruntime reads it, onnx's checker does not)",
      ),
    finetune: z
      .any()
      .superRefine((v, ctx) => {
        if (typeof v === 'function') return;
        if (typeof v !== 'object' || v === null || !('data' in v)) {
          ctx.addIssue({ code: 'custom', message: `Expected a function (pruned, original, info) => Promise<Model> or { data, epochs, … } for finetune but received ${v === null ? 'null' : typeof v}` });
          return;
        }
        const { data, ...rest } = v as FinetuneSpec;
        const r = dataOption('finetune.data').safeParse(data);
        if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: ['data', ...i.path], message: i.message });
        const f = finetuneOptions.safeParse(rest);
        if (!f.success) for (const i of f.error.issues) ctx.addIssue({ code: 'custom', path: [...i.path], message: i.message });
      })
      .optional()
      .describe(
        'Fine-tunes the pruned model: { data, epochs, lr, … } (distillation from the original, masks held, see finetunePruned) or a function (pruned, original, info) => Promise<Model>',
      ) as unknown as z.ZodOptional<z.ZodType<Finetune | FinetuneSpec, Finetune | FinetuneSpec>>,
    schedule: z.enum(PRUNE_SCHEDULES).default('oneshot').describe("'oneshot': the target at once; 'polynomial': over `steps` prune → fine-tune steps, s_t = s_f·(1 − (1 − t/n)³)"),
    steps: z.number().int().min(1).optional().describe("schedule 'polynomial': prune → fine-tune steps (default 4)"),
    recalibrate: z.boolean().optional().describe("channels, with calibration data: restore each Conv's output statistics after pruning (default true)"),
    channelMultiple: z.number().int().min(1).optional().describe("channels: round the channels each group keeps to a multiple of this, for onnxruntime's blocked kernels (default 8; 1: no rounding)"),
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
      recalibrate: ['channels'],
      channelMultiple: ['channels'],
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
    if (o.steps !== undefined && o.schedule !== 'polynomial') ctx.addIssue({ code: 'custom', path: ['steps'], message: "steps applies to schedule 'polynomial'" });
    if (o.schedule === 'polynomial' && o.method === 'n:m') ctx.addIssue({ code: 'custom', path: ['schedule'], message: "schedule 'polynomial' applies to method 'magnitude' or 'channels' (n:m has one fixed pattern)" });
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
  /** The steps of an iterative schedule (schedule 'polynomial', steps > 1). */
  schedule?: { kind: 'polynomial'; steps: ScheduleStep[] };
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
 * Prunes a model: optionally plans per-layer sparsities from measured sensitivity, runs the method's pass (at once,
 * or over `steps` prune → fine-tune steps with schedule 'polynomial'), fine-tunes with the original as teacher when
 * given `finetune` (magnitude and n:m masks held during training and applied again after), and stores pruned
 * weights compactly when asked. Returns a new model; `model` is not changed.
 *
 * @example
 * ```ts
 * const { model: pruned, report } = await prune(model, { method: 'channels', sparsity: 0.5 });
 * console.log(formatPruneReport(report));
 * // recover accuracy: calibration (ranking, recalibration), then distillation from the original
 * await prune(model, { method: 'channels', sparsity: 0.5, calibration: 'calib.json', finetune: { data: 'train.json', epochs: 3 } });
 * // iterative: 80% reached over 4 prune → fine-tune steps
 * await prune(model, { sparsity: 0.8, schedule: 'polynomial', steps: 4, finetune: { data: 'train.json', epochs: 1 } });
 * ```
 */
export async function prune(model: Model, options: PruneOptions = {}, hooks: PruneHooks = {}): Promise<PruneResult> {
  const started = performance.now();
  const o = parseOptions(pruneOptions, options, 'prune');
  const passOptions: Record<string, unknown> = {};
  const copyField = (k: keyof typeof o) => {
    if (o[k] !== undefined) passOptions[k] = o[k];
  };
  for (const k of ['sparsity', 'pattern', 'scope', 'score', 'calibration', 'calibrationSamples', 'criterion', 'batchNormScale', 'biasCompensation', 'recalibrate', 'channelMultiple', 'layerSparsity', 'exclude', 'excludeFirstLast', 'opTypes'] as const) {
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
  const finetune = await resolveFinetune(o.finetune, model, o);
  const ctx: PassContext = { signal: hooks.signal };
  const steps = o.schedule === 'polynomial' ? (o.steps ?? 4) : 1;
  const target = o.sparsity ?? 0.5;
  // channels: the groups' sizes in the original, by their producers, for per-group targets at each step
  const groupOptions = { sparsity: 0, ...(o.exclude ? { exclude: o.exclude } : {}), ...(o.excludeFirstLast !== undefined ? { excludeFirstLast: o.excludeFirstLast } : {}) };
  const original = o.method === 'channels' && steps > 1 ? await planChannels(model, groupOptions) : [];
  let current = model;
  let first: PrunePassResult | ChannelsPassResult | undefined;
  let r!: PrunePassResult | ChannelsPassResult;
  let masks: Map<string, Uint8Array> | undefined;
  const schedule: ScheduleStep[] = [];
  for (let t = 1; t <= steps; t++) {
    const stepOptions = { ...passOptions };
    const f = polynomialSparsity(1, t, steps);
    if (o.method === 'magnitude') {
      // the same fraction of every layer's final sparsity; zeros of earlier steps score 0 and stay pruned
      stepOptions.sparsity = target * f;
      const ls = passOptions.layerSparsity as Record<string, number> | undefined;
      if (ls) stepOptions.layerSparsity = Object.fromEntries(Object.entries(ls).map(([k, v]) => [k, v * f]));
    } else if (o.method === 'channels' && steps > 1) {
      stepOptions.sparsity = 0;
      stepOptions.layerSparsity = channelStep(original, await planChannels(current, groupOptions), passOptions.layerSparsity as Record<string, number> | undefined, target, f);
    }
    const copy = copyModel(current);
    if (o.method === 'magnitude') r = await magnitudeInPlace(copy, parseOptions(magnitudeOptions, stepOptions, 'prune.magnitude'), ctx);
    else if (o.method === 'n:m') r = nmInPlace(copy, parseOptions(nmOptions, stepOptions, 'prune.nm'), ctx);
    else r = await channelsInPlace(copy, parseOptions(channelsOptions, stepOptions, 'prune.channels'), ctx);
    first ??= r;
    if (t === 1 || t === steps) notes.push(...(r.notes ?? []).filter((n) => !notes.includes(n)));
    if ('masks' in r && r.masks) masks = unionMasks(masks, r.masks);
    current = r.model;
    if (finetune) {
      current = await finetune(current, model, { ...(masks ? { masks } : {}), step: t, steps });
      // in case the function did not hold them: zeros stay zeros
      if (masks) notes.push(...reapplyMasks(current, masks).filter((n) => !notes.includes(n)));
    }
    let achieved = r.report.totals.sparsity;
    if (o.method === 'channels' && steps > 1) achieved = 1 - channelCount(await planChannels(current, groupOptions)) / Math.max(channelCount(original), 1);
    schedule.push({ step: t, sparsity: target * f, achieved, params: countParams(current) });
  }
  const report0 = steps > 1 ? mergeReports(first!.report, r.report) : r.report;
  if (o.method === 'channels' && steps > 1) {
    const total = channelCount(original);
    const left = channelCount(await planChannels(current, groupOptions));
    report0.totals.channels = [total, left];
    report0.totals.sparsity = total ? 1 - left / total : 0;
  }
  report0.totals.modelParams = [countParams(model), countParams(current)];
  let storage: StorageReport | undefined;
  if (o.sparseStorage !== 'off') {
    storage = toSparseStorage(current, { mode: o.sparseStorage, ...(o.sparseIndices ? { indices: o.sparseIndices } : {}) });
    notes.push(...storage.notes);
  }
  const finetuned = finetune !== undefined;
  const report: PruneResultReport = { ...report0, finetuned, notes, seconds: (performance.now() - started) / 1000 };
  if (steps > 1) report.schedule = { kind: 'polynomial', steps: schedule };
  if (sensitivity) report.sensitivity = sensitivity;
  if ('groups' in r) report.groups = steps > 1 ? await planChannels(current, groupOptions) : r.groups;
  if (storage) report.storage = storage;
  return { model: current, modified: first!.modified || r.modified || finetuned || (storage?.weights.some((w) => w.stored !== 'dense') ?? false), report };
}

/** One step of an iterative schedule. */
export interface ScheduleStep {
  step: number;
  /** The step's target: the fraction of the prunable weights (magnitude) or of each group's channels (channels). */
  sparsity: number;
  /** After the step: zeros over the prunable weights (magnitude), or channels removed over the original's prunable ones (channels). */
  achieved: number;
  /** Model parameters after the step (and its fine-tuning). */
  params: number;
}

/** A `finetune` option as a function: given as one, or made from `{ data, … }` with `finetunePruned`. */
async function resolveFinetune(spec: Finetune | FinetuneSpec | undefined, model: Model, o: { ep?: ExecutionProvider; threads?: number }): Promise<Finetune | undefined> {
  if (spec === undefined || typeof spec === 'function') return spec;
  const { data: source, ...rest } = spec;
  const data = await openData(source, model);
  const options: FinetuneOptions = { ...(o.ep ? { ep: o.ep } : {}), ...(o.threads ? { threads: o.threads } : {}), ...rest };
  return async (pruned, original, info) => (await finetunePruned(pruned, original, data, { ...options, seed: (options.seed ?? 0) + info.step - 1 }, info.masks ? { masks: info.masks } : {})).model;
}

/**
 * Per-group channel sparsities for one step of an iterative channel schedule, by producer name: each group's final
 * target (its `layerSparsity` or `sparsity`) times `f`, as a count of its original channels, less what earlier
 * steps removed, as a fraction of what is left now.
 */
function channelStep(original: readonly ChannelGroup[], now: readonly ChannelGroup[], layerSparsity: Record<string, number> | undefined, sparsity: number, f: number): Record<string, number> {
  const out: Record<string, number> = {};
  const key = (g: ChannelGroup) => [...g.producers].sort().join('\n');
  const size = new Map(now.map((g) => [key(g), g.channels]));
  for (const g of original) {
    const name = g.producers.find((p) => p);
    const cur = size.get(key(g));
    if (g.frozen || !name || cur === undefined) continue;
    const final = g.producers.map((p) => layerSparsity?.[p]).find((x) => x !== undefined) ?? sparsity;
    const goal = Math.min(g.channels - 1, Math.floor(final * f * g.channels + 1e-9));
    const remove = Math.max(0, goal - (g.channels - cur));
    out[name] = cur > 0 ? remove / cur : 0;
  }
  return out;
}

/** Channels of the groups that can shrink. */
function channelCount(groups: readonly ChannelGroup[]): number {
  return groups.reduce((s, gr) => s + (gr.frozen ? 0 : gr.channels), 0);
}

function unionMasks(a: Map<string, Uint8Array> | undefined, b: ReadonlyMap<string, Uint8Array>): Map<string, Uint8Array> {
  const out = new Map(a ?? []);
  for (const [k, m] of b) {
    const prev = out.get(k);
    out.set(k, prev && prev.length === m.length ? prev.map((x, i) => x | m[i]!) : m);
  }
  return out;
}

/** The report of a multi-step run: the first step's "before" and the last step's "after", per layer and in total. */
function mergeReports(first: PruneReport, last: PruneReport): PruneReport {
  const before = new Map(first.layers.map((l) => [l.node, l]));
  const layers = last.layers.map((l): PruneLayerRow => {
    const b = before.get(l.node);
    if (!b) return l;
    const row: PruneLayerRow = { ...l, params: [b.params[0], l.params[1]] };
    if (l.channelsIn && b.channelsIn) row.channelsIn = [b.channelsIn[0], l.channelsIn[1]];
    if (l.channelsOut && b.channelsOut) row.channelsOut = [b.channelsOut[0], l.channelsOut[1]];
    if (l.nonzero && b.nonzero) row.nonzero = [b.nonzero[0], l.nonzero[1]];
    return row;
  });
  return { ...last, layers, totals: { ...last.totals, zeros: [first.totals.zeros[0], last.totals.zeros[1]] } };
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
export function formatPruneReport(r: PruneReport & Partial<Pick<PruneResultReport, 'storage' | 'sensitivity' | 'notes' | 'finetuned' | 'schedule'>>): string {
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
    const count = (k: string) => st.weights.filter((w) => w.stored === k).length;
    lines.push(
      '',
      `Storage (${st.mode}, ${st.indices}): ${count('bitmask')} weights as bitmask + values, ${count('sparse')} as sparse_initializer, ${count('dense')} dense; file ${formatBytes(st.rawBytes[0])} → ${formatBytes(st.rawBytes[1])} (${(st.rawBytes[1] / st.rawBytes[0]).toFixed(2)}×), gzip ${formatBytes(st.gzipBytes[0])} → ${formatBytes(st.gzipBytes[1])}`,
    );
  }
  if (r.schedule) {
    lines.push('', `Schedule: polynomial decay over ${r.schedule.steps.length} prune → ${r.finetuned ? 'fine-tune' : 'prune'} steps:`);
    const rows = [['step', 'target', 'reached', 'params']];
    for (const s of r.schedule.steps) rows.push([String(s.step), formatPercent(s.sparsity, 1), formatPercent(s.achieved, 1), formatCount(s.params)]);
    lines.push(formatTable(rows, { indent: '  ', right: [1, 2, 3] }));
  }
  if (r.finetuned) lines.push('', `Fine-tuned after pruning${r.method === 'channels' ? '' : ' (pruned positions held at zero)'}.`);
  if (r.method !== 'channels') lines.push('', 'Zeros do not make onnxruntime’s CPU kernels faster (no sparse Conv/Gemm kernels): expect the same latency; the gain is file size.');
  const notes = r.notes ?? [];
  if (notes.length) lines.push('', 'Notes:', ...notes.map((n) => `  - ${n}`));
  return lines.join('\n');
}
