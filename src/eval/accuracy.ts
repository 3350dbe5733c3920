/**
 * Classification accuracy of a model on a labelled dataset (top-k, per-class precision/recall/F1, confusion
 * matrix), and agreement between two models on any dataset (`compareOutputs`).
 *
 * How samples are counted, so numbers match PyTorch's:
 * - A sample is top-k correct when its label is among the k highest scores. Classes are ranked by score, highest
 *   first; equal scores rank by lower class index, as `torch.argmax` does (it returns the first maximum), so the
 *   top-1 prediction is the first maximum. `torch.topk` on the CPU does not promise an order among equal scores
 *   (PyTorch 1.13 returns index 1 first for [1, 1, 0, 0], where argmax returns 0); `fixtures/reference.json` was
 *   counted with `torch.topk`, and its counts have no ties that matter: ours equal them exactly.
 * - NaN scores rank below every number (PyTorch ranks NaN above: a NaN score should not earn a correct answer).
 *   Samples with a NaN or infinite score are counted in `nonFinite`.
 * - k is clipped to the number of classes (top-5 of a 3-class model is 1).
 * - The confusion matrix has one row per true label and one column per predicted (top-1) class.
 * - Precision of a class never predicted, and recall of a class with no samples, are 0. Macro averages are over
 *   the classes that occur as a label or as a prediction (as scikit-learn does).
 *
 * Feeds: each dataset input is fed to the model input of the same name; a dataset with a single unnamed input
 * feeds the model's first input. Data is cast to the input's element type when they differ (float64 → float32,
 * int32 → int64, …; floats go to integer inputs only when every value is a whole number). A model whose batch
 * dimension is fixed gets batches of exactly that size (the last one padded with zeros, its extra rows ignored).
 */
import { EvaluationError, OptionsError, expected, oneOf } from '../errors.js';
import { toFloat32, fromFloat32 } from '../onnx/codecs.js';
import { DTYPES, INT_RANGE, elementCount, type DType, type TypedArray } from '../onnx/dtype.js';
import { formatCount, formatPercent, formatTable } from '../onnx/inspect.js';
import { Model, type Dim } from '../onnx/ir.js';
import { Runner, type ExecutionProvider, type RunTensor } from '../onnx/runner.js';
import type { Batch, Dataset, Feed } from './datasets.js';

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Samples per run (default 64). Ignored when the model's batch dimension is fixed. */
  batchSize?: number;
  /** Execution provider, when a Model is given (default `cpu`). */
  ep?: ExecutionProvider;
  /** Intra-op threads, when a Model is given (default: onnxruntime's choice). */
  threads?: number;
  /** The model output that holds the scores (logits or probabilities); default the first output. */
  output?: string;
  /** Which top-k accuracies to report in `topK` (default [1, 5]). top-1 and top-5 are always computed. */
  topK?: number[];
  /** Evaluate only the first `limit` samples of the dataset. */
  limit?: number;
  /** Keep every sample's top-1 prediction in `predictions`. */
  predictions?: boolean;
  /** Called after each batch with the samples done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Precision, recall and F1 of one class; `support` is the number of samples with that label. */
export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** What `evaluate` returns; plain data, safe to `JSON.stringify`. */
export interface EvalResult {
  samples: number;
  /** Top-1 accuracy (a fraction). */
  top1: number;
  /** Top-5 accuracy (a fraction; k clipped to the number of classes). */
  top5: number;
  correct: { top1: number; top5: number };
  /** Every requested k, ascending. */
  topK: { k: number; correct: number; accuracy: number }[];
  /** Classes the model scores (the width of its output). */
  numClasses: number;
  perClass: ClassMetrics[];
  macro: { precision: number; recall: number; f1: number };
  /** confusion[label][prediction] = sample count. */
  confusion: number[][];
  /** Samples with at least one NaN or infinite score. */
  nonFinite: number;
  ep: ExecutionProvider;
  outputName: string;
  /** Samples per run actually used. */
  batchSize: number;
  /** Wall time of the evaluation loop (preprocessing included), in seconds. */
  seconds: number;
  /** Top-1 prediction of every sample, when `options.predictions` is set. */
  predictions?: number[];
}

/** Options of `compareOutputs`. */
export interface CompareOptions {
  batchSize?: number;
  ep?: ExecutionProvider;
  threads?: number;
  /** Output of model A to compare (default its first output). */
  output?: string;
  /** Output of model B to compare (default: `output` if B has it, else B's first output). */
  outputB?: string;
  limit?: number;
  onProgress?: (done: number, total: number) => void;
}

/** What `compareOutputs` returns. */
export interface CompareResult {
  samples: number;
  /** Fraction of samples whose top-1 class (first maximum) is the same for both models. */
  top1Agreement: number;
  /** Mean over samples of the cosine similarity of the two output vectors (1 when both are zero vectors). */
  cosine: number;
  /** The smallest per-sample cosine similarity. */
  minCosine: number;
  /** Signal-to-quantization-noise ratio over all elements, 10·log10(Σa² / Σ(a−b)²), in dB (Infinity when equal). */
  sqnrDb: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  outputs: [string, string];
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions and feeds

interface Opened {
  runner: Runner;
  owned: boolean;
  model?: Model;
}

async function open(model: Model | Runner, options: { ep?: ExecutionProvider; threads?: number }): Promise<Opened> {
  if (model instanceof Runner) {
    if (options.ep !== undefined && options.ep !== model.ep) {
      throw new OptionsError(`ep is "${options.ep}" but the Runner given was made for "${model.ep}": make the Runner with that provider, or pass the Model`);
    }
    return { runner: model, owned: false };
  }
  if (!(model instanceof Model)) throw new OptionsError(expected('a Model or a Runner', 'the model to evaluate', typeof model));
  return { runner: await Runner.create(model, { ep: options.ep ?? 'cpu', threads: options.threads }), owned: true, model };
}

interface InputPlan {
  /** Dataset feed key. */
  key: string;
  /** Model input name. */
  input: string;
  dtype: DType;
}

interface FeedPlan {
  inputs: InputPlan[];
  /** The model's fixed batch size, if its inputs fix one. */
  fixedBatch?: number;
}

const IO_DTYPES = new Set(Object.keys(DTYPES));

/** The model's inputs as types and shapes: from the IR when we have it, else from onnxruntime's metadata. */
function modelInputs(o: Opened): { name: string; dtype?: DType; shape?: readonly Dim[] }[] {
  return o.runner.inputs.map((info) => {
    const v = o.model?.graph.inputs.find((x) => x.name === info.name);
    if (v?.elemType) return { name: info.name, dtype: v.elemType, shape: v.shape };
    const dtype = info.dtype && IO_DTYPES.has(info.dtype) ? (info.dtype as DType) : undefined;
    // onnxruntime gives symbolic dims as names and unknown ones as -1 or ''
    const shape = info.shape?.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d !== '' ? d : null));
    return { name: info.name, dtype, shape };
  });
}

function fmtDims(dims: readonly (Dim | 'N')[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/**
 * Matches dataset feeds to model inputs and checks element types and shapes before anything runs, so a mismatch
 * is reported once, naming the input, the model's shape and the data's.
 */
function planFeeds(o: Opened, dataset: Dataset, owner: string): FeedPlan {
  const inputs = modelInputs(o);
  const keys = Object.keys(dataset.sampleDims);
  if (inputs.length === 0) throw new EvaluationError(`The model${owner} has no inputs to feed`);
  const pairs: { key: string; input: (typeof inputs)[number] }[] = [];
  if (dataset.inputNames.length === 0) {
    // a single unnamed dataset input feeds the model's first input
    if (keys.length !== 1) throw new EvaluationError(`The dataset has ${keys.length} unnamed inputs; name them after the model's inputs ${oneOf(inputs.map((i) => i.name))}`);
    pairs.push({ key: keys[0]!, input: inputs[0]! });
  } else {
    for (const key of keys) {
      const input = inputs.find((i) => i.name === key);
      if (!input) throw new EvaluationError(`Dataset input "${key}" is not an input of the model${owner} ${oneOf(inputs.map((i) => i.name))}`);
      pairs.push({ key, input });
    }
  }
  const fed = new Set(pairs.map((p) => p.input.name));
  const unfed = inputs.filter((i) => !fed.has(i.name));
  if (unfed.length) {
    throw new EvaluationError(`Model input${unfed.length > 1 ? 's' : ''} ${unfed.map((i) => `"${i.name}"`).join(', ')}${owner} ${unfed.length > 1 ? 'have' : 'has'} no data in the dataset (it provides ${oneOf(keys)})`);
  }
  let fixedBatch: number | undefined;
  const plans: InputPlan[] = [];
  for (const { key, input } of pairs) {
    const sample = dataset.sampleDims[key]!;
    const dtype = input.dtype ?? 'float32';
    if (input.shape) {
      const data: (Dim | 'N')[] = ['N', ...sample];
      const model = input.shape;
      const mismatch = model.length !== data.length || model.some((d, i) => i > 0 && typeof d === 'number' && d !== data[i]);
      if (mismatch) {
        const perSample = elementCount(sample);
        const modelPer = model.slice(1).every((d) => typeof d === 'number') ? elementCount(model.slice(1) as number[]) : undefined;
        const hint =
          modelPer === perSample
            ? `; both hold ${perSample} values per sample: set the layout in the dataset descriptor ("input": {"layout": ${model.length === 2 ? '"flat"' : '"NCHW" or "NHWC"'}})`
            : '';
        throw new EvaluationError(`Dataset input "${key}" does not fit model input "${input.name}"${owner}: the model expects ${fmtDims(model)} ${dtype} but the data is ${fmtDims(data)}${hint}`);
      }
      const b = model[0];
      if (typeof b === 'number' && b > 0) {
        if (fixedBatch !== undefined && fixedBatch !== b) {
          throw new EvaluationError(`The model's inputs${owner} fix different batch sizes (${fixedBatch} and ${b} for "${input.name}")`);
        }
        fixedBatch = b;
      }
    }
    plans.push({ key, input: input.name, dtype });
  }
  return fixedBatch === undefined ? { inputs: plans } : { inputs: plans, fixedBatch };
}


/** Casts feed data to the model input's element type (see the module doc for what is allowed). */
function castData(data: TypedArray, from: DType, to: DType, input: string): TypedArray {
  if (from === to) return data;
  const n = data.length;
  if (to === 'float32') return data instanceof Float32Array ? data : toFloat32(data, from, n);
  if (to === 'float64') return Float64Array.from(data as ArrayLike<number | bigint>, Number);
  if (DTYPES[to].float && (to === 'float16' || to === 'bfloat16')) {
    return fromFloat32(data instanceof Float32Array ? data : toFloat32(data, from, n), to);
  }
  // packed sub-byte types cannot be fed element by element
  const limits = DTYPES[to].bits >= 8 ? INT_RANGE[to] : undefined;
  const Ctor = DTYPES[to].array;
  if (!limits || !Ctor) throw new EvaluationError(`Cannot feed ${from} data to model input "${input}", which takes ${to}`);
  const out = new Ctor(n);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < n; i++) {
    const v = Number((data as ArrayLike<number | bigint>)[i]);
    if (!Number.isInteger(v) || v < limits[0] || v > limits[1]) {
      throw new EvaluationError(`Cannot feed ${from} data to model input "${input}" (${to}): value ${v} at element ${i} is not ${Number.isInteger(v) ? `in [${limits[0]}, ${limits[1]}]` : 'a whole number'}`);
    }
    (out as unknown as (number | bigint)[])[i] = big ? BigInt(v) : v;
  }
  return out;
}

/** The model feeds for a batch: cast, and padded with zero samples up to a fixed batch size. */
function makeFeeds(plan: FeedPlan, batch: Batch, take: number): Record<string, RunTensor> {
  const feeds: Record<string, RunTensor> = {};
  const rows = plan.fixedBatch ?? take;
  for (const p of plan.inputs) {
    const f: Feed = batch.feeds[p.key]!;
    const per = elementCount(f.dims.slice(1));
    let data = f.data;
    if (take < f.dims[0]! || rows !== take) {
      const Ctor = DTYPES[f.dtype].array!;
      const out = new Ctor(rows * per);
      out.set(data.subarray(0, take * per) as never);
      data = out;
    }
    feeds[p.input] = { dtype: p.dtype, dims: [rows, ...f.dims.slice(1)], data: castData(data, f.dtype, p.dtype, p.input) };
  }
  return feeds;
}

/** Scores of an output as numbers, one row of `classes` per sample. */
function readScores(t: RunTensor, name: string, take: number, rows: number, owner: string): { values: ArrayLike<number>; classes: number } {
  if (t.dims[0] !== rows) {
    throw new EvaluationError(`Output "${name}"${owner} has shape ${fmtDims(t.dims)}; expected the batch of ${rows} in its first dimension`);
  }
  const rest = t.dims.slice(1);
  if (rest.filter((d) => d !== 1).length > 1 || rest.length === 0) {
    throw new EvaluationError(`Output "${name}"${owner} has shape ${fmtDims(t.dims)}; expected scores shaped [batch, classes]: pick another output with the "output" option`);
  }
  if (!DTYPES[t.dtype]?.float || t.dtype === 'complex64' || t.dtype === 'complex128') {
    throw new EvaluationError(`Output "${name}"${owner} holds ${t.dtype} values; expected floating-point scores (logits or probabilities): pick another output with the "output" option`);
  }
  const classes = elementCount(rest);
  const data = t.data as TypedArray;
  const values = data instanceof Float32Array || data instanceof Float64Array ? data : toFloat32(data, t.dtype, data.length);
  return { values: values.subarray(0, take * classes), classes };
}

function pickOutput(runner: Runner, wanted: string | undefined, owner: string): string {
  const names = runner.outputNames;
  if (wanted === undefined) {
    if (!names.length) throw new EvaluationError(`The model${owner} has no outputs`);
    return names[0]!;
  }
  if (!names.includes(wanted)) throw new EvaluationError(`The model${owner} has no output named "${wanted}" ${oneOf(names)}`);
  return wanted;
}

function positiveInt(v: unknown, field: string): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1)) throw new OptionsError(expected('a positive integer', field, v));
}

/** Batches of the dataset, cut at `limit` samples. */
async function* limited(dataset: Dataset, batchSize: number, total: number): AsyncGenerator<{ batch: Batch; take: number }> {
  let done = 0;
  // no larger batches than needed: preprocessing is done per batch
  for await (const batch of dataset.batches(Math.max(1, Math.min(batchSize, total)))) {
    const take = Math.min(batch.size, total - done);
    if (take <= 0) return;
    yield { batch, take };
    done += take;
  }
}

/** One batch of `datasetFeeds`. */
export interface DatasetFeedBatch {
  /** Model feeds, by input name. */
  feeds: Record<string, RunTensor>;
  /** Samples of the dataset in this batch. */
  take: number;
  /** The batch dimension fed: `take`, or the model's fixed batch size (the last batch padded with zero samples). */
  rows: number;
}

/**
 * A dataset's batches as feeds for a session, matched to the model's inputs, cast and padded as `evaluate` and
 * `compareOutputs` do (shared with calibration). Mismatched names, types or shapes throw before anything runs.
 *
 * @example
 * ```ts
 * for await (const { feeds, take } of datasetFeeds(runner, dataset, { model, batchSize: 32, limit: 1000 })) {
 *   await runner.run(feeds);
 * }
 * ```
 */
export async function* datasetFeeds(
  runner: Runner,
  dataset: Dataset,
  options: { model?: Model; batchSize?: number; limit?: number } = {},
): AsyncGenerator<DatasetFeedBatch> {
  positiveInt(options.batchSize, 'batchSize');
  positiveInt(options.limit, 'limit');
  const plan = planFeeds({ runner, owned: false, model: options.model }, dataset, '');
  const total = Math.min(options.limit ?? dataset.size, dataset.size);
  for await (const { batch, take } of limited(dataset, plan.fixedBatch ?? options.batchSize ?? 64, total)) {
    yield { feeds: makeFeeds(plan, batch, take), take, rows: plan.fixedBatch ?? take };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Ranking

/** Ranking key: NaN ranks below every number. */
function key(x: number): number {
  return x === x ? x : -Infinity;
}

/** Index of the first maximum of row `i`. */
function argmax(v: ArrayLike<number>, offset: number, classes: number): number {
  let best = 0, bestKey = key(v[offset]!);
  for (let j = 1; j < classes; j++) {
    const kj = key(v[offset + j]!);
    if (kj > bestKey) {
      best = j;
      bestKey = kj;
    }
  }
  return best;
}

/** How many classes rank above `label`: higher score, or equal score and lower index. */
function rankOf(v: ArrayLike<number>, offset: number, classes: number, label: number): number {
  const s = key(v[offset + label]!);
  let rank = 0;
  for (let j = 0; j < classes; j++) {
    const kj = key(v[offset + j]!);
    if (kj > s || (kj === s && j < label)) rank++;
  }
  return rank;
}

// ---------------------------------------------------------------------------------------------------------------
// evaluate

/**
 * Measures classification accuracy: top-k, per-class precision/recall/F1 and the confusion matrix. Needs labels;
 * for agreement with a reference model on unlabelled data use `compareOutputs`.
 *
 * @example
 * ```ts
 * import { loadModel, loadDataset, evaluate } from 'onnxpress';
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * const data = await loadDataset('fixtures/fmnist-test-256/cnn.json');
 * const r = await evaluate(model, data, { batchSize: 128 });
 * r.top1;          // 0.91796875
 * r.correct.top1;  // 235
 * ```
 */
export async function evaluate(model: Model | Runner, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvalResult> {
  positiveInt(options.batchSize, 'batchSize');
  positiveInt(options.limit, 'limit');
  const ks = [...new Set(options.topK ?? [1, 5])].sort((a, b) => a - b);
  for (const k of ks) positiveInt(k, 'topK');
  if (!dataset.hasLabels) {
    throw new EvaluationError(
      'The dataset has no labels: accuracy needs a label per sample. Add labels to the dataset descriptor, or measure agreement with a reference model with compareOutputs(model, reference, dataset)',
    );
  }
  const total = Math.min(options.limit ?? dataset.size, dataset.size);
  const opened = await open(model, options);
  const started = performance.now();
  try {
    const { runner } = opened;
    const plan = planFeeds(opened, dataset, '');
    const outputName = pickOutput(runner, options.output, '');
    const batchSize = plan.fixedBatch ?? options.batchSize ?? 64;

    let classes = 0;
    let confusion = new Int32Array(0);
    let rankHist = new Int32Array(0); // rankHist[r] = samples whose label ranked r
    let nonFinite = 0, done = 0;
    const predictions: number[] | undefined = options.predictions ? [] : undefined;
    options.onProgress?.(0, total);
    for await (const { batch, take } of limited(dataset, batchSize, total)) {
      const rows = plan.fixedBatch ?? take;
      const out = await runner.run(makeFeeds(plan, batch, take), [outputName]);
      const { values, classes: c } = readScores(out[outputName]!, outputName, take, rows, '');
      if (classes === 0) {
        classes = c;
        if (dataset.numClasses !== undefined && dataset.numClasses > classes) {
          throw new EvaluationError(`The dataset has ${dataset.numClasses} classes but output "${outputName}" scores ${classes}`);
        }
        confusion = new Int32Array(classes * classes);
        rankHist = new Int32Array(classes);
      }
      const labels = batch.labels!;
      for (let i = 0; i < take; i++) {
        const label = labels[i]!;
        if (label < 0 || label >= classes) {
          throw new EvaluationError(`Label ${label} of sample ${done + i} is not one of the ${classes} classes that output "${outputName}" scores`);
        }
        const off = i * classes;
        for (let j = 0; j < classes; j++) {
          if (!Number.isFinite(values[off + j]!)) {
            nonFinite++;
            break;
          }
        }
        const pred = argmax(values, off, classes);
        confusion[label * classes + pred]!++;
        rankHist[rankOf(values, off, classes, label)]!++;
        predictions?.push(pred);
      }
      done += take;
      options.onProgress?.(done, total);
    }

    // top-k from the rank histogram: correct@k = samples whose label ranked below k
    const correctAt = (k: number): number => {
      let n = 0;
      for (let r = 0; r < Math.min(k, classes); r++) n += rankHist[r]!;
      return n;
    };
    const matrix: number[][] = [];
    for (let l = 0; l < classes; l++) matrix.push(Array.from(confusion.subarray(l * classes, (l + 1) * classes)));
    const perClass: ClassMetrics[] = [];
    let mp = 0, mr = 0, mf = 0, present = 0;
    for (let c = 0; c < classes; c++) {
      const tp = matrix[c]![c]!;
      const support = matrix[c]!.reduce((s, x) => s + x, 0);
      const predicted = matrix.reduce((s, row) => s + row[c]!, 0);
      const precision = predicted ? tp / predicted : 0;
      const recall = support ? tp / support : 0;
      const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
      perClass.push({ precision, recall, f1, support });
      if (support || predicted) {
        present++;
        mp += precision;
        mr += recall;
        mf += f1;
      }
    }
    const frac = (n: number) => (done ? n / done : 0);
    const top1 = correctAt(1), top5 = correctAt(5);
    const result: EvalResult = {
      samples: done,
      top1: frac(top1),
      top5: frac(top5),
      correct: { top1, top5 },
      topK: ks.map((k) => ({ k, correct: correctAt(k), accuracy: frac(correctAt(k)) })),
      numClasses: classes,
      perClass,
      macro: present ? { precision: mp / present, recall: mr / present, f1: mf / present } : { precision: 0, recall: 0, f1: 0 },
      confusion: matrix,
      nonFinite,
      ep: runner.ep,
      outputName,
      batchSize,
      seconds: (performance.now() - started) / 1000,
    };
    if (predictions) result.predictions = predictions;
    return result;
  } finally {
    if (opened.owned) await opened.runner.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// compareOutputs

/**
 * Compares two models' outputs on the same data (labels not needed): top-1 agreement, cosine similarity and SQNR.
 * Typical use: a quantized or pruned model against the original.
 *
 * @example
 * ```ts
 * const r = await compareOutputs(quantized, original, await loadDataset('calib.json'));
 * r.top1Agreement; // 0.998
 * r.sqnrDb;        // 31.2
 * ```
 */
export async function compareOutputs(modelA: Model | Runner, modelB: Model | Runner, dataset: Dataset, options: CompareOptions = {}): Promise<CompareResult> {
  positiveInt(options.batchSize, 'batchSize');
  positiveInt(options.limit, 'limit');
  const total = Math.min(options.limit ?? dataset.size, dataset.size);
  const a = await open(modelA, options);
  let b: Opened | undefined;
  const started = performance.now();
  try {
    b = await open(modelB, options);
    const planA = planFeeds(a, dataset, ' A');
    const planB = planFeeds(b, dataset, ' B');
    const outA = pickOutput(a.runner, options.output, ' A');
    const outB = pickOutput(b.runner, options.outputB ?? (options.output !== undefined && b.runner.outputNames.includes(options.output) ? options.output : undefined), ' B');
    const fixed = planA.fixedBatch ?? planB.fixedBatch;
    if (planA.fixedBatch !== undefined && planB.fixedBatch !== undefined && planA.fixedBatch !== planB.fixedBatch) {
      throw new EvaluationError(`Model A fixes batch size ${planA.fixedBatch} but model B fixes ${planB.fixedBatch}`);
    }
    const batchSize = fixed ?? options.batchSize ?? 64;
    let done = 0, agree = 0, cosSum = 0, minCos = 1, signal = 0, noise = 0, maxAbs = 0, absSum = 0, elements = 0;
    options.onProgress?.(0, total);
    for await (const { batch, take } of limited(dataset, batchSize, total)) {
      const ra = await a.runner.run(makeFeeds(planA, batch, take), [outA]);
      const rb = await b.runner.run(makeFeeds(planB, batch, take), [outB]);
      const sa = readScores(ra[outA]!, outA, take, planA.fixedBatch ?? take, ' A');
      const sb = readScores(rb[outB]!, outB, take, planB.fixedBatch ?? take, ' B');
      if (sa.classes !== sb.classes) {
        throw new EvaluationError(`Output "${outA}" of model A has ${sa.classes} values per sample but output "${outB}" of model B has ${sb.classes}`);
      }
      const c = sa.classes;
      for (let i = 0; i < take; i++) {
        const off = i * c;
        if (argmax(sa.values, off, c) === argmax(sb.values, off, c)) agree++;
        let dot = 0, na = 0, nb = 0;
        for (let j = off; j < off + c; j++) {
          const x = sa.values[j]!, y = sb.values[j]!, d = Math.abs(x - y);
          dot += x * y;
          na += x * x;
          nb += y * y;
          noise += d * d;
          absSum += d;
          if (!(d <= maxAbs)) maxAbs = d; // also catches NaN
        }
        signal += na;
        const cos = na === 0 && nb === 0 ? 1 : na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
        cosSum += cos;
        if (!(cos >= minCos)) minCos = cos;
        elements += c;
      }
      done += take;
      options.onProgress?.(done, total);
    }
    return {
      samples: done,
      top1Agreement: done ? agree / done : 0,
      cosine: done ? cosSum / done : 0,
      minCosine: done ? minCos : 0,
      sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
      maxAbsDiff: maxAbs,
      meanAbsDiff: elements ? absSum / elements : 0,
      outputs: [outA, outB],
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    if (a.owned) await a.runner.release();
    if (b?.owned) await b.runner.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/**
 * A human-readable report of an evaluation: top-k accuracies with counts, macro averages and a per-class table.
 *
 * @example
 * ```ts
 * console.log(formatEvalResult(await evaluate(model, data), { classNames: ['T-shirt', 'Trouser', …] }));
 * ```
 */
export function formatEvalResult(r: EvalResult, options: { classNames?: readonly string[] } = {}): string {
  const f = (x: number) => x.toFixed(4);
  const ks = r.topK.some((t) => t.k === 5) || r.numClasses < 5 ? r.topK : [...r.topK, { k: 5, correct: r.correct.top5, accuracy: r.top5 }];
  const lines = [
    formatTable(
      [
        ['Samples', formatCount(r.samples), `${r.numClasses} classes, output "${r.outputName}", ${r.ep}, batch ${r.batchSize}, ${r.seconds.toFixed(2)} s`],
        ...ks.map((t) => [`Top-${t.k}`, formatPercent(t.accuracy), `${formatCount(t.correct)} / ${formatCount(r.samples)}`]),
        ['Macro F1', f(r.macro.f1), `precision ${f(r.macro.precision)}, recall ${f(r.macro.recall)}`],
      ],
      { right: [1] },
    ),
  ];
  if (r.nonFinite) lines.push(`Warning: ${formatCount(r.nonFinite)} samples had NaN or infinite scores`);
  const rows = [['class', 'precision', 'recall', 'f1', 'support']];
  r.perClass.forEach((m, c) => rows.push([options.classNames?.[c] ?? String(c), f(m.precision), f(m.recall), f(m.f1), String(m.support)]));
  lines.push('', 'Per class:', formatTable(rows, { indent: '  ', right: [1, 2, 3, 4] }));
  return lines.join('\n');
}
