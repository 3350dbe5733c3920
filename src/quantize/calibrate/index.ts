/**
 * Streaming calibration: the value range of each tensor that will get a QuantizeLinear/DequantizeLinear pair,
 * measured by running the float model on sample data.
 *
 * One onnxruntime session (through `Runner`) exposes the observed tensors as extra outputs; batch by batch,
 * every tensor's observer is updated and the batch's outputs are dropped, so memory does not grow with the number
 * of samples (onnxruntime's Python tool keeps every batch's outputs until the end). Graph inputs are observed from
 * the feeds, initializers once from their data, graph outputs like any other tensor.
 *
 * `minmax` (the default) needs only each batch's extremes, so for float32 tensors the session's model instead
 * feeds each tensor to ReduceMin, ReduceMax and ReduceSum (as onnxruntime's MinMaxCalibrater does): only scalars
 * leave onnxruntime. A tensor known to be ≥ 0 (made by Relu or Clip(0, ·)) gets only its maximum, through
 * GlobalMaxPool where it has channels, which onnxruntime runs on its blocked convolution layout instead of first
 * copying the tensor back to NCHW (see `withReductions`). `percentile` (asymmetric) needs only each batch's most
 * extreme values: TopK, largest and smallest (largest only for a tensor ≥ 0), hands `TailObserver` the k values a
 * side that the exact quantile over the whole run can depend on (see `tails.ts`), for every float32 tensor whose
 * size per sample is known. A batch where a sum is NaN or an extreme infinite (some value is NaN or ±Infinity),
 * or that was padded up to a model's fixed batch size, is run again through a session exposing the tensors (made
 * on first need), so such values are skipped and counted and padding rows ignored, as for the other methods.
 *
 * NaN and ±Infinity are skipped by the observers and counted (`nonFinite` in the result); by default the first
 * one stops calibration with an error naming the tensor and the samples, since they usually mean a broken model
 * or wrong preprocessing; `nonFinite: 'ignore'` calibrates from the finite values (attention masks of −∞, say).
 *
 * A tensor made by Identity, Reshape, Flatten, Squeeze, Unsqueeze or Transpose from another observed tensor holds
 * the same values: it is not observed again and gets that tensor's range. Graph inputs are reduced inside the graph
 * too (minmax, percentile) rather than scanned from the feeds in JavaScript.
 *
 * Cost (the float model alone = 1×). The fixture CNN, 10000 samples, batch 32, 2 busy cores: onnxruntime alone
 * takes about 2–2.6× once the tensors are exposed (it copies them out and cannot fuse across them); the
 * histogram methods add one pass of 2–5 ns a value in JS (`histogram.ts`), which on this small model (26 000
 * activation values but only 1.1 M multiply-adds a sample) makes mse and entropy about 3.6–4×. `range()` runs once
 * per tensor at the end: entropy 20–170 ms and mse 10–40 ms for 2048 bins. In-graph methods, 512 samples at one
 * thread, calibrate() alone: minmax 1.0–1.4× on ResNet-8, 1.5–1.75× on the MobileNet-style fixture (it was
 * 2.1–2.3× before tensors ≥ 0 skipped the reorder; onnxruntime's profiler: GlobalMaxPool 1.7–1.9 ms and the
 * convolutions 1.2 ms slower, from the fusions an observed tensor breaks, on 7 ms of inference a batch), 1.2× on
 * the CNN and MLP; percentile 1.6–1.8× and 2.4–2.6× (TopK 5–9 ms a batch).
 */
import { z } from 'zod';
import { EvaluationError, OptionsError, expected, oneOf } from '../../errors.js';
import { datasetFeeds } from '../../eval/accuracy.js';
import type { Dataset } from '../../eval/datasets.js';
import { toFloat32 } from '../../onnx/codecs.js';
import { DTYPES, elementCount, type DType, type TypedArray } from '../../onnx/dtype.js';
import { Model, attr, type Attr, type Value } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import { inferShapes } from '../../onnx/infer/index.js';
import { constantOf } from '../../onnx/hygiene/constants.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../../onnx/proto.js';
import { EXECUTION_PROVIDERS, Runner, type ExecutionProvider, type RunTensor } from '../../onnx/runner.js';
import { parseOptions } from '../../pass.js';
import type { CalibrationMethod, CalibrationResult, Feeds, TensorRange } from '../types.js';
import { DEFAULT_AVERAGING_CONSTANT, DEFAULT_BINS, DEFAULT_PERCENTILE, MinMaxObserver, makeObserver, type Observer } from './observers.js';
import { TailObserver } from './tails.js';

export {
  DEFAULT_AVERAGING_CONSTANT,
  DEFAULT_BINS,
  DEFAULT_PERCENTILE,
  EntropyObserver,
  MinMaxObserver,
  MseObserver,
  OBSERVERS,
  PercentileObserver,
  makeObserver,
  quantizationError,
  sqnr,
  type Observer,
  type ObserverOptions,
  type QuantizationError,
} from './observers.js';
export { Histogram, entropyThreshold, extremes, mseRange } from './histogram.js';
export { TailObserver, tailLength } from './tails.js';

/** The calibration methods, in the order help and errors list them. */
export const CALIBRATION_METHODS = ['minmax', 'percentile', 'entropy', 'mse'] as const satisfies readonly CalibrationMethod[];

/**
 * Options of `calibrate`, declared once: types, defaults, descriptions.
 *
 * @example
 * ```ts
 * calibrateOptions.parse({ tensors: ['relu1'], method: 'entropy' });
 * ```
 */
export const calibrateOptions = z
  .object({
    tensors: z.array(z.string().min(1)).min(1).describe('Value names to observe (those that will get a QDQ pair); graph inputs and outputs too'),
    method: z.enum(CALIBRATION_METHODS).default('minmax').describe('How a range is chosen from the observed values'),
    percentile: z.number().min(50).max(100).default(DEFAULT_PERCENTILE).describe('percentile: the percentage of values kept inside the range'),
    symmetric: z.boolean().default(false).describe('percentile: a range ±t from the percentile of |x| instead of one percentile per side'),
    movingAverage: z
      .union([z.boolean(), z.number().gt(0).max(1)])
      .default(false)
      .describe(`minmax: moving-average min/max per batch, with this constant (true: ${DEFAULT_AVERAGING_CONSTANT})`),
    samples: z.number().int().positive().optional().describe('Stop after this many samples (default: all)'),
    batchSize: z.number().int().positive().default(32).describe('Samples per run (a model with a fixed batch size uses its own)'),
    bins: z.number().int().min(2).max(1 << 24).default(DEFAULT_BINS).describe('Histogram bins per tensor (percentile, entropy, mse)'),
    nonFinite: z.enum(['error', 'ignore']).default('error').describe('What a NaN or infinite activation does: stop with an error, or be skipped'),
    ep: z.enum(EXECUTION_PROVIDERS as [ExecutionProvider, ...ExecutionProvider[]]).default('cpu').describe('Execution provider'),
    threads: z.number().int().positive().optional().describe("Intra-op threads (default: onnxruntime's choice)"),
    onProgress: z
      .custom<(done: number, total: number) => void>((v) => typeof v === 'function', { message: 'Expected a function (done, total) => void' })
      .optional()
      .describe('Called after each batch with the samples done and the total (0 when unknown)'),
    signal: z
      .custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'Expected an AbortSignal' })
      .optional()
      .describe('Cancels calibration between batches'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.movingAverage !== false && o.method !== 'minmax') {
      ctx.addIssue({ code: 'custom', path: ['movingAverage'], message: `applies to method "minmax" only, but method is "${o.method}"` });
    }
    if (o.method === 'entropy' && o.bins < 128) {
      ctx.addIssue({ code: 'custom', path: ['bins'], message: `entropy needs at least 128 bins (one per quantized level), but received ${o.bins}` });
    }
  });

/** Options of `calibrate` (before defaults). */
export type CalibrateOptions = z.input<typeof calibrateOptions>;
type Options = z.output<typeof calibrateOptions>;

/** What `calibrate` returns: the shared CalibrationResult, plus what was skipped and how long it took. */
export interface CalibrateResult extends CalibrationResult {
  /** NaN and ±Infinity values skipped, per tensor that had any. */
  nonFinite: Map<string, number>;
  /** Wall time, session creation included, in seconds. */
  seconds: number;
}

/** Where an observed tensor's values come from. */
type Source = 'feed' | 'initializer' | 'output';

interface Observed {
  name: string;
  source: Source;
  observer: Observer;
}

/**
 * Calibrates activation ranges by running the float model on sample data, one batch at a time.
 *
 * @example
 * ```ts
 * const data = await loadDataset('calib.json', { inputNames: ['input'] });
 * const { ranges } = await calibrate(model, data, { tensors: ['relu1', 'relu2'], method: 'percentile', samples: 512 });
 * ranges.get('relu1'); // { min: 0, max: 5.93 }
 * ```
 */
export async function calibrate(model: Model, data: Dataset | AsyncIterable<Feeds> | Iterable<Feeds>, options: CalibrateOptions): Promise<CalibrateResult> {
  return (await run(model, data, options)).result;
}

/** The calibration loop; `afterBatch` sees the observers after each batch (for memory measurements). */
async function run(
  model: Model,
  data: Dataset | AsyncIterable<Feeds> | Iterable<Feeds>,
  rawOptions: CalibrateOptions,
  afterBatch?: (observers: readonly Observer[]) => void,
): Promise<{ result: CalibrateResult; observers: Observer[] }> {
  const started = performance.now();
  const o = parseOptions(calibrateOptions, rawOptions, 'calibrate');
  if (!(model instanceof Model)) throw new OptionsError(expected('a Model', 'the model to calibrate', typeof model));
  const dataset = isDataset(data) ? data : undefined;
  if (!dataset && !isIterable(data)) throw new OptionsError(expected('a Dataset or an (async) iterable of feeds', 'the calibration data', typeof data));
  if (dataset && dataset.size === 0) throw new EvaluationError('The calibration dataset is empty: there are no samples to calibrate on');
  if (!model.graph.inputs.some((v) => !v.initializer)) {
    throw new EvaluationError('The model has no inputs: no calibration data can reach it (everything it computes is a constant; fold constants instead of quantizing)');
  }
  o.signal?.throwIfAborted();
  const all = resolveTensors(model, o);
  // a Reshape (or the like) of an observed tensor holds the same values: it takes that tensor's range
  const alias = sameValues(model, new Set(all.map((t) => t.name)));
  const observed = all.filter((t) => !alias.has(t.name));
  const observers = observed.map((t) => t.observer);

  for (const t of observed) {
    if (t.source !== 'initializer') continue;
    const tensor = model.graph.values.get(t.name)!.initializer!;
    t.observer.update(asFloats(t.name, tensor.dtype, tensor.data(), tensor.size));
  }
  const total = dataset ? Math.min(o.samples ?? dataset.size, dataset.size) : (o.samples ?? 0);
  // minmax and (asymmetric) percentile: onnxruntime reduces float32 tensors inside the graph; everything else is
  // copied out and observed here
  const inGraph = o.method === 'minmax' || (o.method === 'percentile' && !o.symmetric);
  const { model: sessionModel, reduced } = inGraph ? withReductions(model, observed.filter((t) => t.source !== 'initializer'), o, total) : { model, reduced: [] as Reduced[] };
  const reducible = new Set(reduced.map((r) => r.t));
  const exposed = observed.filter((t) => t.source === 'output' && !reducible.has(t)).map((t) => t.name);
  // a fixed number of batches through a session made for them: onnxruntime's memory pattern would only make the
  // first runs slow (see RunnerOptions.memPattern)
  const runnerOptions = { ep: o.ep, threads: o.threads, memPattern: false };
  const runner = await Runner.create(sessionModel, { ...runnerOptions, extraOutputs: exposed });
  const fetch = [...exposed, ...reduced.flatMap((r) => [r.min, r.max, r.tails?.top, r.tails?.bottom, r.sum, r.size].filter((x): x is string => x !== undefined))];
  // made on first need: a session exposing the reduced tensors, for batches whose values must be seen (see below)
  let exposing: Runner | undefined;
  let done = 0;
  let batchIndex = 0;
  const check = (t: Observed, before: number, take: number): void => {
    if (o.nonFinite === 'error' && t.observer.nonFinite > before) {
      throw new EvaluationError(
        `Tensor "${t.name}" holds ${t.observer.nonFinite - before} NaN or infinite values in samples ${done}–${done + take - 1} (batch ${batchIndex}): ` +
          `the model computes non-finite values on this data. Check the input preprocessing, or pass nonFinite: 'ignore' to calibrate from the finite values only`,
      );
    }
  };
  try {
    o.onProgress?.(0, total);
    const batches = dataset ? datasetFeeds(runner, dataset, { model, batchSize: o.batchSize, limit: o.samples }) : iterableFeeds(runner, data as AsyncIterable<Feeds>, o.samples);
    for await (const { feeds, take, rows } of batches) {
      o.signal?.throwIfAborted();
      const outputs = fetch.length ? await runner.run(feeds, fetch) : {};
      for (const t of observed) {
        if (t.source === 'initializer' || reducible.has(t)) continue;
        const before = t.observer.nonFinite;
        t.observer.update(batchRows(t.name, t.source === 'feed' ? feeds[t.name]! : outputs[t.name]!, take, rows));
        check(t, before, take);
      }
      // the values themselves are needed when a reduction saw NaN or ±Infinity (to skip and count them) or when
      // the batch was padded (the padding rows must not count): rare, so the second session is made on demand.
      // Then every reduced tensor of the batch is observed there, since tensors known to be ≥ 0 have no NaN
      // check of their own (see `withReductions`)
      const seen = reduced.map((r) => {
        const size = r.perSample !== undefined ? r.perSample * rows : Number(outputs[r.size!]!.data[0]);
        const sum = r.sum !== undefined ? Number(outputs[r.sum]!.data[0]) : 0;
        if (r.tails) {
          const top = outputs[r.tails.top]!.data as Float32Array;
          const bottom = r.tails.bottom !== undefined ? (outputs[r.tails.bottom]!.data as Float32Array) : undefined;
          return { r, size, top, bottom, finite: size === 0 || (Number.isFinite(top[0]!) && (!bottom || Number.isFinite(bottom[0]!)) && !Number.isNaN(sum)) };
        }
        const min = r.min !== undefined ? Number(outputs[r.min]!.data[0]) : 0;
        const max = Number(outputs[r.max!]!.data[0]);
        // a NaN anywhere makes the sum NaN; an infinity shows in min or max (an overflowing sum of finite values is fine)
        return { r, size, min, max, finite: size === 0 || (Number.isFinite(min) && Number.isFinite(max) && !Number.isNaN(sum)) };
      });
      const unseen = take < rows || seen.some((x) => !x.finite) ? reduced : [];
      if (!unseen.length) {
        for (const x of seen) {
          if (x.size === 0) continue;
          if (x.r.tails) (x.r.t.observer as TailObserver).updateTails(x.top!, x.bottom, x.size);
          else (x.r.t.observer as MinMaxObserver).updateExtremes(x.min!, x.max!, x.size);
        }
      }
      if (unseen.length) {
        // graph inputs are in the feeds; the rest come from a session exposing them
        const inner = unseen.filter((r) => r.t.source !== 'feed');
        let values: Record<string, RunTensor> = {};
        if (inner.length) {
          exposing ??= await Runner.create(model, { ...runnerOptions, extraOutputs: reduced.filter((r) => r.t.source !== 'feed').map((r) => r.t.name) });
          values = await exposing.run(feeds, inner.map((r) => r.t.name));
        }
        for (const { t } of unseen) {
          const before = t.observer.nonFinite;
          t.observer.update(batchRows(t.name, t.source === 'feed' ? feeds[t.name]! : values[t.name]!, take, rows));
          check(t, before, take);
        }
      }
      done += take;
      batchIndex++;
      afterBatch?.(observers);
      o.onProgress?.(done, total);
    }
  } finally {
    await runner.release();
    await exposing?.release();
  }
  if (done === 0) throw new EvaluationError('The calibration data is empty: it gave no samples to calibrate on');
  const ranges = new Map<string, TensorRange>();
  const nonFinite = new Map<string, number>();
  for (const t of observed) {
    if (t.observer.nonFinite) nonFinite.set(t.name, t.observer.nonFinite);
    if (t.observer.count === 0) {
      throw new EvaluationError(
        t.observer.nonFinite
          ? `Tensor "${t.name}" held only NaN or infinite values (${t.observer.nonFinite}) over ${done} samples: no range`
          : `Tensor "${t.name}" held no values over ${done} samples (an empty tensor): no range`,
      );
    }
    ranges.set(t.name, t.observer.range());
  }
  for (const t of all) {
    const root = alias.get(t.name);
    if (root === undefined) continue;
    ranges.set(t.name, { ...ranges.get(root)! });
    if (nonFinite.has(root)) nonFinite.set(t.name, nonFinite.get(root)!);
  }
  const ordered = new Map(all.map((t) => [t.name, ranges.get(t.name)!]));
  const result: CalibrateResult = { method: o.method, samples: done, ranges: ordered, nonFinite, seconds: (performance.now() - started) / 1000 };
  return { result, observers };
}

/**
 * The outputs a tensor reduced inside the graph gets in the session's model: its batch extremes (minmax) or its
 * batch tails (percentile), a NaN check and its size.
 */
interface Reduced {
  t: Observed;
  /** minmax: the batch minimum; absent for a tensor known to be ≥ 0 (its range starts at 0). */
  min?: string;
  /** minmax: the batch maximum. */
  max?: string;
  /** percentile: the k largest values, descending, and the k smallest, ascending (k capped by the batch size); no `bottom` for a tensor known to be ≥ 0. */
  tails?: { top: string; bottom?: string };
  /** ReduceSum (a NaN anywhere makes it NaN); absent for a tensor known to be ≥ 0 (see `withReductions`). */
  sum?: string;
  /** Values per sample when the shape fixes them; else `size` names a Size output. */
  perSample?: number;
  size?: string;
}

/**
 * A copy of the model where each float32 tensor (by stated or inferred type) also feeds reductions whose small
 * outputs are graph outputs, so that the tensor itself never leaves onnxruntime and stays an intermediate that
 * fusions can keep: onnxruntime's vectorized kernels replace copying the tensor out and scanning it in JavaScript.
 * - minmax: ReduceMin, ReduceMax (as onnxruntime's own MinMaxCalibrater does);
 * - percentile: TopK of the flattened tensor, largest and smallest, with k = min(size, the tail length the whole
 *   run needs) — exact quantiles from `TailObserver`. Only for tensors whose size per sample is known (all
 *   dimensions but the batch fixed) and a known sample count, since k depends on the total; the others keep the
 *   histogram observer.
 * Both add ReduceSum (NaN shows as a NaN sum) to tensors not known to be ≥ 0, and Size when the shape does not
 * fix the count.
 *
 * A tensor made by Relu or Clip(0, ·) (through pooling and reshaping) is ≥ 0, and the quantizer widens every
 * range to include 0, so its lower end cannot matter: it gets only a maximum (minmax) or a top tail (percentile),
 * and its range starts at 0. Where it has channels (rank ≥ 3) the maximum comes from GlobalMaxPool, which
 * onnxruntime runs on the blocked (NCHWc) layout its convolutions produce: ReduceMax would make it convert the
 * tensor back to NCHW first, a copy that cost more than the reduction (MobileNet-style fixture, batch 32: 3.8 ms
 * of reorders on 7.4 ms of inference). Such a tensor has no NaN check of its own: a NaN in it (Relu and Clip pass
 * NaN on) is caught when it shows in any other observed tensor's sum or extremes, since then the whole batch is
 * run again with every tensor exposed and counted.
 * Tensors of other or unknown types are left to be copied out.
 */
function withReductions(model: Model, tensors: Observed[], o: Options, total: number): { model: Model; reduced: Reduced[] } {
  if (!tensors.length) return { model, reduced: [] };
  const copy = modelFromProto(decodeModelProto(encodeModel(model)));
  try {
    inferShapes(copy);
  } catch {
    // a model inference cannot follow keeps the types it states
  }
  const g = copy.graph;
  const percentile = o.method === 'percentile';
  // TopK with a computed k needs Min over int64 (opset 12)
  if (percentile && ((copy.opset() ?? 0) < 12 || total < 1)) return { model, reduced: [] };
  const batchDim = g.inputs.find((v) => !v.initializer)?.shape?.[0];
  /** Values per sample, when every dimension but a leading batch dimension is fixed. */
  const perSample = (v: Value): number | undefined => {
    const shape = v.shape;
    if (!shape || shape.length === 0 || batchDim === undefined || batchDim === null || shape[0] !== batchDim) return undefined;
    const rest = shape.slice(1);
    if (!rest.every((d): d is number => typeof d === 'number')) return undefined;
    return rest.reduce((a, b) => a * b, 1);
  };
  // a tensor known to be empty is left to the copied-out path, which reports it (GlobalMaxPool refuses empty
  // channels, and TopK would have no tail to keep)
  const eligible = tensors.filter((t) => {
    const v = g.values.get(t.name);
    return v?.elemType === 'float32' && !v.shape?.some((d) => d === 0) && (!percentile || perSample(v) !== undefined);
  });
  if (!eligible.length) return { model, reduced: [] };
  const positive = nonNegativeValues(copy);
  const scalar = { keepdims: attr.int(0) };
  let flatShape: Value | undefined, oneShape: Value | undefined;
  const reduced = eligible.map((t): Reduced => {
    const v = g.values.get(t.name)!;
    const add = (opType: string, suffix: string, inputs: Value[], elemType: DType, attributes?: Record<string, Attr>, output = true): Value => {
      const node = g.addNode({ opType, inputs, outputs: [g.uniqueName(`${t.name}/calibrate.${suffix}`), ...(opType === 'TopK' ? [g.uniqueName(`${t.name}/calibrate.${suffix}.indices`)] : [])], ...(attributes ? { attributes } : {}) });
      const out = node.output();
      out.type = { kind: 'tensor', elemType };
      if (output) g.outputs.push(out);
      return out;
    };
    const nonNegative = positive.has(v);
    const each = perSample(v);
    const count: Pick<Reduced, 'perSample' | 'size'> = each !== undefined ? { perSample: each } : { size: add('Size', 'size', [v], 'int64').name };
    const sum = nonNegative ? undefined : add('ReduceSum', 'sum', [v], 'float32', scalar).name;
    if (!percentile) {
      if (nonNegative) {
        // GlobalMaxPool's per-channel maxima are reduced to one value in the graph too: fetching them would make
        // garbage that grows with the batches run until the collector runs (bench/quantize's memory check)
        const input = (v.shape?.length ?? 0) >= 3 ? add('GlobalMaxPool', 'channels', [v], 'float32', undefined, false) : v;
        return { t, max: add('ReduceMax', 'max', [input], 'float32', scalar).name, ...count };
      }
      return { t, min: add('ReduceMin', 'min', [v], 'float32', scalar).name, max: add('ReduceMax', 'max', [v], 'float32', scalar).name, ...(sum ? { sum } : {}), ...count };
    }
    const expected = total * each!;
    const observer = new TailObserver({ percentile: o.percentile, expected, nonNegative });
    t.observer = observer;
    flatShape ??= g.addInitializer(g.uniqueName('calibrate.flat'), Tensor.from('int64', [2], [1n, -1n]));
    oneShape ??= g.addInitializer(g.uniqueName('calibrate.one'), Tensor.from('int64', [1], [1n]));
    const cap = g.addInitializer(g.uniqueName(`${t.name}/calibrate.k`), Tensor.from('int64', [], [BigInt(observer.capacity)]));
    const flat = add('Reshape', 'flat', [v, flatShape], 'float32', undefined, false);
    const sizeValue = count.size !== undefined ? g.values.get(count.size)! : add('Size', 'size', [v], 'int64', undefined, false);
    const k = add('Reshape', 'k1', [add('Min', 'kmin', [sizeValue, cap], 'int64', undefined, false), oneShape], 'int64', undefined, false);
    const top = add('TopK', 'top', [flat, k], 'float32', { axis: attr.int(-1), largest: attr.int(1), sorted: attr.int(1) }).name;
    const bottom = nonNegative ? undefined : add('TopK', 'bottom', [flat, k], 'float32', { axis: attr.int(-1), largest: attr.int(0), sorted: attr.int(1) }).name;
    return { t, tails: { top, ...(bottom ? { bottom } : {}) }, ...(sum ? { sum } : {}), ...count };
  });
  return { model: copy, reduced };
}

/** Ops that make a non-negative output from non-negative inputs (the data inputs; shapes and indices aside). */
const KEEPS_SIGN: ReadonlySet<string> = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Slice', 'Split', 'Concat']);

/**
 * Values of the main graph known to be ≥ 0 (or NaN) whatever the inputs: outputs of Relu, of Clip with a constant
 * lower bound ≥ 0, of Sigmoid and Softmax, and what KEEPS_SIGN ops make of them alone.
 */
function nonNegativeValues(model: Model): Set<Value> {
  const out = new Set<Value>();
  const opset = model.opset() ?? 1;
  for (const n of model.graph.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    let yes = false;
    if (n.opType === 'Relu' || n.opType === 'Sigmoid' || n.opType === 'Softmax') yes = true;
    else if (n.opType === 'Clip') {
      const lo = opset >= 11 ? constantOf(n.inputs[1])?.data()[0] : n.getFloat('min', -Infinity);
      yes = typeof lo === 'number' && lo >= 0;
    } else if (KEEPS_SIGN.has(n.opType)) {
      const data = n.opType === 'Concat' ? n.inputs : n.inputs.slice(0, 1);
      yes = data.length > 0 && data.every((v) => v !== null && out.has(v));
    }
    if (yes) for (const v of n.outputs) if (v && (n.opType !== 'MaxPool' || v === n.outputs[0])) out.add(v);
  }
  return out;
}

/** Ops whose output holds exactly the values of their first input, rearranged (same multiset, same statistics). */
const SAME_VALUES: ReadonlySet<string> = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose']);

/**
 * Observed tensors that are such a rearrangement (through any chain of SAME_VALUES ops) of another observed
 * tensor, mapped to the observed tensor at the top of the chain: they are not fetched or observed again.
 */
function sameValues(model: Model, names: ReadonlySet<string>): Map<string, string> {
  const alias = new Map<string, string>();
  for (const name of names) {
    let v = model.graph.values.get(name)!;
    let root: string | undefined;
    for (let p = v.producer; p && p.domain === '' && SAME_VALUES.has(p.opType) && p.inputs[0]; p = v.producer) {
      v = p.inputs[0];
      if (names.has(v.name)) root = v.name;
    }
    if (root !== undefined) alias.set(name, root);
  }
  return alias;
}

/** Checks the tensor names and makes one observer per tensor. */
function resolveTensors(model: Model, o: Options): Observed[] {
  const g = model.graph;
  const activations = [...g.inputs.filter((v) => !v.initializer).map((v) => v.name), ...g.nodes.flatMap((n) => n.outputs.filter((v) => v !== null).map((v) => v.name))];
  const out: Observed[] = [];
  for (const name of new Set(o.tensors)) {
    const v = g.values.get(name);
    if (!v) throw new OptionsError(`Unknown tensor "${name}" in tensors: the main graph has no value of that name ${oneOf(activations)}`);
    const dtype = v.elemType ?? v.initializer?.dtype;
    if (dtype && !isFloat(dtype)) throw new OptionsError(`Tensor "${name}" holds ${dtype} values: only floating-point tensors can be calibrated`);
    const source: Source = v.initializer ? 'initializer' : v.isGraphInput ? 'feed' : 'output';
    out.push({ name, source, observer: makeObserver(o.method, o) });
  }
  return out;
}

function isFloat(dtype: DType): boolean {
  return DTYPES[dtype]?.float === true && dtype !== 'complex64' && dtype !== 'complex128';
}

function isDataset(d: unknown): d is Dataset {
  return typeof d === 'object' && d !== null && typeof (d as Dataset).batches === 'function' && typeof (d as Dataset).size === 'number';
}

function isIterable(d: unknown): boolean {
  return typeof d === 'object' && d !== null && (Symbol.asyncIterator in d || Symbol.iterator in d);
}

/** A tensor's values as float32, without copying float32 data. */
function asFloats(name: string, dtype: DType, data: TypedArray | string[], count: number): Float32Array {
  if (dtype === 'float32') return data as Float32Array;
  if (!isFloat(dtype)) throw new EvaluationError(`Tensor "${name}" holds ${dtype} values: only floating-point tensors can be calibrated`);
  return toFloat32(data as TypedArray, dtype, count);
}

/** The values of the `take` real samples of a batch (a padded batch of a fixed-batch model has `rows` > `take`). */
function batchRows(name: string, t: RunTensor, take: number, rows: number): Float32Array {
  const all = asFloats(name, t.dtype, t.data, elementCount(t.dims));
  if (take === rows || t.dims[0] !== rows) return all;
  return all.subarray(0, (all.length / rows) * take);
}

/** Feeds from an iterable, counted by the batch dimension of the model's first input and cut at `limit`. */
async function* iterableFeeds(runner: Runner, data: AsyncIterable<Feeds> | Iterable<Feeds>, limit: number | undefined): AsyncGenerator<{ feeds: Feeds; take: number; rows: number }> {
  const first = runner.inputNames[0];
  let done = 0;
  for await (const feeds of data) {
    if (limit !== undefined && done >= limit) return;
    const lead = first !== undefined ? feeds[first] : undefined;
    if (!lead) throw new EvaluationError(`Calibration feeds lack model input "${first}" (inputs are ${oneOf(runner.inputNames)}; given ${oneOf(Object.keys(feeds))})`);
    const rows = lead.dims[0] ?? 1;
    if (rows === 0) continue;
    const take = limit === undefined ? rows : Math.min(rows, limit - done);
    yield { feeds: take < rows ? sliceFeeds(feeds, rows, take) : feeds, take, rows: take };
    done += take;
  }
}

/** The first `take` rows of every feed whose first dimension is the batch. */
function sliceFeeds(feeds: Feeds, rows: number, take: number): Feeds {
  const out: Feeds = {};
  for (const [k, f] of Object.entries(feeds)) {
    if (f.dims[0] !== rows) {
      out[k] = f;
      continue;
    }
    const per = f.data.length / rows;
    const data = Array.isArray(f.data) ? f.data.slice(0, per * take) : f.data.subarray(0, per * take);
    out[k] = { dtype: f.dtype, dims: [take, ...f.dims.slice(1)], data };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Memory

/** What `measureCalibrationMemory` reports (bytes). */
export interface CalibrationMemory {
  result: CalibrateResult;
  /** Sum of the observers' `retainedBytes()` at the end. */
  retainedBytes: number;
  /** Resident set size before calibration, and the largest seen after any batch. */
  rssBefore: number;
  rssPeak: number;
  /** Largest V8 heap use and ArrayBuffer total seen after any batch. */
  heapUsedPeak: number;
  arrayBuffersPeak: number;
  /** Batches run. */
  batches: number;
}

/**
 * Runs `calibrate` and samples the process's memory after every batch (outputs of the batch still alive), for
 * benchmarks and tests. Calls `global.gc()` first when node runs with `--expose-gc`. The figures are process-wide.
 *
 * @example
 * ```ts
 * const m = await measureCalibrationMemory(model, data, { tensors, samples: 10000 });
 * console.log(m.retainedBytes, (m.rssPeak - m.rssBefore) / 2 ** 20, 'MiB');
 * ```
 */
export async function measureCalibrationMemory(model: Model, data: Dataset | AsyncIterable<Feeds> | Iterable<Feeds>, options: CalibrateOptions): Promise<CalibrationMemory> {
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage();
  let rssPeak = before.rss, heapUsedPeak = before.heapUsed, arrayBuffersPeak = before.arrayBuffers, batches = 0;
  const { result, observers } = await run(model, data, options, () => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapUsedPeak = Math.max(heapUsedPeak, m.heapUsed);
    arrayBuffersPeak = Math.max(arrayBuffersPeak, m.arrayBuffers);
    batches++;
  });
  const retainedBytes = observers.reduce((s, ob) => s + ob.retainedBytes(), 0);
  return { result, retainedBytes, rssBefore: before.rss, rssPeak, heapUsedPeak, arrayBuffersPeak, batches };
}
