/**
 * The training loop: trains a student model with onnxruntime computing loss and gradients (one training-step graph
 * from `buildTrainingGraph`) and the optimizer updating weights in TypeScript.
 *
 * - Shuffling: one permutation per epoch (`seededPermutation`), seeded from the loop's own generator.
 * - Augmentation of image inputs [C, H, W] (seeded, per sample): random crop with padding (the image is shifted by up
 *   to `cropPadding` pixels each way; the uncovered border takes the channel's minimum, i.e. black once normalized)
 *   and horizontal flip with probability ½.
 * - Teacher soft targets: the teacher runs on the same (augmented) batch; without augmentation its logits are
 *   computed once for the whole training set and cached (`teacherCache`).
 * - Validation after every epoch on the inference form of the current weights: top-1 on labelled data, else top-1
 *   agreement with the teacher. Early stopping after `patience` epochs without improvement; the best weights are
 *   kept and returned (`keepBest`).
 * - Checkpoints: after every epoch `onCheckpoint(state)` receives a `TrainState` (plain data; `encodeCheckpoint`
 *   makes bytes of it); `resumeFrom: state` continues from there and ends with the same weights as an uninterrupted
 *   run. The loop never touches the file system.
 * - Deterministic for a seed on the CPU EP with `threads: 1`.
 */
import { z } from 'zod';
import { OptionsError, PassError, expected, oneOf } from '../errors.js';
import { compareOutputs, evaluate } from '../eval/accuracy.js';
import { seededPermutation, type Dataset, type Feed, type FileDataset } from '../eval/datasets.js';
import { toFloat32 } from '../onnx/codecs.js';
import { elementCount, type TypedArray } from '../onnx/dtype.js';
import type { Model } from '../onnx/ir.js';
import { EXECUTION_PROVIDERS, Runner, type RunTensor } from '../onnx/runner.js';
import { Tensor } from '../onnx/tensor.js';
import { parseOptions } from '../pass.js';
import { buildTrainingGraph, inferenceModel, type LossSpec, type TrainingGraph } from './graph.js';
import { makeOptimizer, optimizerOptions, type OptimizerState } from './optim.js';
import { Mulberry32 } from '../util/random.js';

/** Options of `train` that are data (validated by zod, recorded in the output's metadata). */
export const trainOptions = z
  .object({
    epochs: z.number().int().positive().default(10).describe('passes over the training data'),
    batchSize: z.number().int().positive().default(64).describe('samples per optimizer step'),
    seed: z.number().int().min(0).default(0).describe('seed of shuffling and augmentation'),
    optimizer: optimizerOptions.default(optimizerOptions.parse({})).describe('optimizer, learning rate and schedule'),
    temperature: z.number().positive().default(4).describe('distillation temperature T (the KD term is scaled by T²)'),
    alpha: z.number().min(0).max(1).default(0.5).describe('weight of the hard-label cross-entropy; 1 − alpha weighs the KD term'),
    augment: z
      .object({
        cropPadding: z.number().int().min(0).default(0).describe('random crop: shift images by up to this many pixels'),
        flip: z.boolean().default(false).describe('random horizontal flip'),
      })
      .strict()
      .default({ cropPadding: 0, flip: false }),
    teacherCache: z.enum(['auto', 'on', 'off']).default('auto').describe('cache teacher logits for the training set (auto: when not augmenting)'),
    patience: z.number().int().positive().optional().describe('early stopping: epochs without validation improvement'),
    minDelta: z.number().min(0).default(0).describe('smallest validation gain that counts as an improvement'),
    keepBest: z.boolean().default(true).describe('return the weights of the best validation epoch'),
    batchNorm: z.enum(['train', 'frozen']).default('train').describe('BatchNormalization: batch statistics while training, or frozen running statistics'),
    dropLast: z.boolean().default(false).describe('skip the last, smaller batch of each epoch'),
    ep: z.enum(EXECUTION_PROVIDERS).default('cpu'),
    threads: z.number().int().positive().optional().describe('intra-op threads (1 makes runs reproducible)'),
    evalBatchSize: z.number().int().positive().default(256).describe('samples per run for teacher targets and validation'),
    logitsOutput: z.string().optional().describe("the student's output that holds the logits (default its first)"),
    teacherOutput: z.string().optional().describe("the teacher's output that holds the logits (default its first)"),
  })
  .strict();

export type TrainOptionsData = z.input<typeof trainOptions>;
export type ResolvedTrainOptions = z.output<typeof trainOptions>;

/** Progress after each optimizer step. */
export interface TrainProgress {
  /** 1-based epoch. */
  epoch: number;
  epochs: number;
  /** 1-based step within the epoch. */
  step: number;
  stepsPerEpoch: number;
  /** Optimizer steps taken in all. */
  globalStep: number;
  /** Mean training loss of the epoch so far. */
  loss: number;
  lr: number;
  /** Training throughput of the epoch so far (teacher included). */
  samplesPerSec: number;
}

/** One epoch's record. */
export interface EpochRecord {
  epoch: number;
  /** Mean training loss. */
  loss: number;
  /** Validation metric (top-1, or top-1 agreement with the teacher on unlabelled data), if validating. */
  val?: number;
  valMetric?: 'top1' | 'teacherAgreement';
  lr: number;
  samplesPerSec: number;
  seconds: number;
}

/** Everything needed to resume training after an epoch; plain data (`encodeCheckpoint` makes bytes of it). */
export interface TrainState {
  format: 'onnxpress.train/1';
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** The generator's state (shuffling and augmentation draw from it). */
  rng: number;
  params: Record<string, Float32Array>;
  buffers: Record<string, Float32Array>;
  optimizer: OptimizerState;
  history: EpochRecord[];
  best?: { epoch: number; metric: number; params: Record<string, Float32Array>; buffers: Record<string, Float32Array> };
  badEpochs: number;
  /** What must match to resume: seed, batch size, data size, parameter names and sizes. */
  fingerprint: string;
}

/** What `train` needs besides data options: models, datasets and callbacks. */
export interface TrainHooks {
  /** The teacher for distillation (omit for training on labels alone). */
  teacher?: Model;
  /** Validation data. */
  val?: Dataset;
  /** Which initializers to train (default: every float initializer the builder can train). */
  trainable?: (name: string) => boolean;
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** Receives the state after each epoch, e.g. to write a checkpoint file. */
  onCheckpoint?: (state: TrainState) => void | Promise<void>;
  /** Resume from a state given to `onCheckpoint` by an earlier run with the same options and data. */
  resumeFrom?: TrainState;
  signal?: AbortSignal;
  /**
   * Called after every optimizer step with the parameters, updated in place; the hook may change them in place
   * too (pruning re-applies its masks here, so fine-tuning never revives a pruned weight).
   */
  afterStep?: (params: Readonly<Record<string, Float32Array>>, step: number) => void;
}

export type TrainOptions = TrainOptionsData & TrainHooks;

/** What `train` returns. */
export interface TrainResult {
  /** The student in inference form with the returned weights (best or last). */
  model: Model;
  params: Map<string, Tensor>;
  buffers: Map<string, Tensor>;
  history: EpochRecord[];
  /** The epoch whose weights are returned. */
  epoch: number;
  bestMetric?: number;
  stoppedEarly: boolean;
  steps: number;
  seconds: number;
  loss: LossSpec;
  options: ResolvedTrainOptions;
}

// ---------------------------------------------------------------------------------------------------------------
// Data access

interface Gathered {
  feeds: Record<string, { dims: number[]; data: Float32Array }>;
  labels?: Int32Array;
}

interface Source {
  size: number;
  keys: string[];
  sampleDims: Record<string, number[]>;
  hasLabels: boolean;
  gather(indices: ArrayLike<number>): Gathered;
}

function asFloat32(f: Feed): Float32Array {
  const d = f.data as TypedArray;
  return d instanceof Float32Array ? d : toFloat32(d, f.dtype, d.length);
}

function isFileDataset(d: Dataset): d is FileDataset {
  return typeof (d as FileDataset).batch === 'function';
}

/** Random access to samples: per-sample reads from a FileDataset, else the whole dataset held in memory. */
async function makeSource(data: Dataset): Promise<Source> {
  const keys = Object.keys(data.sampleDims);
  const per = Object.fromEntries(keys.map((k) => [k, elementCount(data.sampleDims[k]!)]));
  const alloc = (n: number) => Object.fromEntries(keys.map((k) => [k, { dims: [n, ...data.sampleDims[k]!], data: new Float32Array(n * per[k]!) }]));
  if (isFileDataset(data)) {
    return {
      size: data.size,
      keys,
      sampleDims: data.sampleDims,
      hasLabels: data.hasLabels,
      gather(indices) {
        const n = indices.length;
        const feeds = alloc(n);
        const labels = data.hasLabels ? new Int32Array(n) : undefined;
        for (let i = 0; i < n; i++) {
          const b = data.batch(indices[i]!, 1);
          for (const k of keys) feeds[k]!.data.set(asFloat32(b.feeds[k]!), i * per[k]!);
          if (labels) labels[i] = b.labels![0]!;
        }
        return labels ? { feeds, labels } : { feeds };
      },
    };
  }
  const all = alloc(data.size);
  const allLabels = data.hasLabels ? new Int32Array(data.size) : undefined;
  let at = 0;
  for await (const b of data.batches(1024)) {
    for (const k of keys) all[k]!.data.set(asFloat32(b.feeds[k]!).subarray(0, b.size * per[k]!), at * per[k]!);
    if (allLabels && b.labels) allLabels.set(b.labels.subarray(0, b.size), at);
    at += b.size;
  }
  return {
    size: data.size,
    keys,
    sampleDims: data.sampleDims,
    hasLabels: data.hasLabels,
    gather(indices) {
      const n = indices.length;
      const feeds = alloc(n);
      const labels = allLabels ? new Int32Array(n) : undefined;
      for (let i = 0; i < n; i++) {
        const j = indices[i]!;
        for (const k of keys) feeds[k]!.data.set(all[k]!.data.subarray(j * per[k]!, (j + 1) * per[k]!), i * per[k]!);
        if (labels) labels[i] = allLabels![j]!;
      }
      return labels ? { feeds, labels } : { feeds };
    },
  };
}

/**
 * Augments a batch of [C, H, W] images in place: random shift by up to `pad` pixels (crop of the padded image),
 * border filled with the channel's minimum, then a horizontal flip with probability ½.
 */
function augmentBatch(x: { dims: number[]; data: Float32Array }, pad: number, flip: boolean, rng: Mulberry32): void {
  const [n, c, h, w] = x.dims as [number, number, number, number];
  const plane = h * w;
  const tmp = new Float32Array(plane);
  for (let s = 0; s < n; s++) {
    const dy = pad ? Math.floor(rng.next() * (2 * pad + 1)) - pad : 0;
    const dx = pad ? Math.floor(rng.next() * (2 * pad + 1)) - pad : 0;
    const f = flip && rng.next() < 0.5;
    if (!dy && !dx && !f) continue;
    for (let ch = 0; ch < c; ch++) {
      const off = (s * c + ch) * plane;
      const src = x.data.subarray(off, off + plane);
      let fill = Infinity;
      for (let i = 0; i < plane; i++) if (src[i]! < fill) fill = src[i]!;
      for (let y = 0; y < h; y++) {
        const sy = y + dy;
        for (let xo = 0; xo < w; xo++) {
          const sx = (f ? w - 1 - xo : xo) + dx;
          tmp[y * w + xo] = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[sy * w + sx]! : fill;
        }
      }
      src.set(tmp);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The loop

function outputClasses(model: Model, output: string | undefined, owner: string): number | undefined {
  const outs = model.graph.outputs;
  const v = output === undefined ? outs[0] : outs.find((o) => o.name === output);
  if (!v) throw new OptionsError(`The ${owner} has no output named "${output}" ${oneOf(outs.map((o) => o.name))}`);
  const d = v.shape?.[v.shape.length - 1];
  return typeof d === 'number' ? d : undefined;
}

function copyRecord(r: Record<string, Float32Array>): Record<string, Float32Array> {
  return Object.fromEntries(Object.entries(r).map(([k, a]) => [k, a.slice()]));
}

function toTensors(r: Record<string, Float32Array>, dims: Map<string, readonly number[]>): Map<string, Tensor> {
  return new Map(Object.entries(r).map(([k, a]) => [k, Tensor.from('float32', dims.get(k)!, a.slice())]));
}

/**
 * Trains `student` on `data` (distilling from `options.teacher` when given) and returns it in inference form.
 *
 * @example
 * ```ts
 * const data = await loadDataset('train.json');
 * const { model, history } = await train(student, data, {
 *   teacher, val, epochs: 5, batchSize: 128, temperature: 4, alpha: 0.5,
 *   optimizer: { kind: 'adam', lr: 2e-3, schedule: { kind: 'cosine' } },
 *   onProgress: (p) => console.log(p.epoch, p.step, p.loss.toFixed(3)),
 * });
 * ```
 */
export async function train(student: Model, data: Dataset, options: TrainOptions = {}): Promise<TrainResult> {
  const started = performance.now();
  const { teacher, val, trainable, onProgress, onEpoch, onCheckpoint, resumeFrom, signal, afterStep, ...raw } = options;
  const o = parseOptions(trainOptions, raw, 'train');

  // loss: labels and teacher as available; alpha is forced to what they allow
  const useTeacher = teacher !== undefined && o.alpha < 1;
  const useLabels = data.hasLabels && o.alpha > 0;
  if (!useTeacher && !useLabels) {
    throw new OptionsError(
      teacher === undefined
        ? 'train needs labels (the training data has none) or a teacher to distill from'
        : `alpha is ${o.alpha}, which weighs only the hard labels, but the training data has no labels: lower alpha (0 = pure distillation)`,
    );
  }
  const loss: LossSpec = { temperature: o.temperature, alpha: useTeacher && useLabels ? o.alpha : useLabels ? 1 : 0, useLabels, useTeacher };

  const tg: TrainingGraph = buildTrainingGraph(student, { loss, trainable, batchNorm: o.batchNorm, ...(o.logitsOutput ? { logitsOutput: o.logitsOutput } : {}) });
  if (!tg.params.length) throw new OptionsError('Nothing to train: the student has no trainable float initializers (check the trainable filter)');

  const source = await makeSource(data);
  if (source.size < 1) throw new OptionsError('The training data is empty');
  const keys = source.keys;
  if (keys.length !== tg.dataInputs.length) {
    throw new OptionsError(`The student takes ${tg.dataInputs.length} data input(s) ${oneOf(tg.dataInputs)} but the training data provides ${keys.length} ${oneOf(keys)}`);
  }
  // dataset feed key → training-graph input: by name, or positionally for one unnamed input
  const feedName = new Map<string, string>();
  if (keys.length === 1 && !tg.dataInputs.includes(keys[0]!)) feedName.set(keys[0]!, tg.dataInputs[0]!);
  else {
    for (const k of keys) {
      if (!tg.dataInputs.includes(k)) throw new OptionsError(`Training data input "${k}" is not an input of the student ${oneOf(tg.dataInputs)}`);
      feedName.set(k, k);
    }
  }
  const imageKeys = keys.filter((k) => source.sampleDims[k]!.length === 3);
  const augmenting = o.augment.cropPadding > 0 || o.augment.flip;
  if (augmenting && imageKeys.length === 0) {
    throw new OptionsError(`Augmentation (crop padding, flip) needs image inputs shaped [C, H, W]; the training data's are ${keys.map((k) => `"${k}" [${source.sampleDims[k]!.join(', ')}]`).join(', ')}`);
  }

  const classes = outputClasses(student, o.logitsOutput, 'student') ?? (teacher ? outputClasses(teacher, o.teacherOutput, 'teacher') : undefined) ?? data.numClasses;
  if (classes === undefined) throw new OptionsError("Cannot tell the number of classes: the student's logits output has no known last dimension and the data names none");

  const paramDims = new Map<string, readonly number[]>();
  const params: Record<string, Float32Array> = {};
  for (const p of tg.params) {
    if (p.init.dtype !== 'float32') throw new OptionsError(`Parameter "${p.name}" is ${p.init.dtype}; training needs float32 weights`);
    params[p.name] = Float32Array.from(p.init.data<Float32Array>());
    paramDims.set(p.name, p.init.dims);
  }
  const buffers: Record<string, Float32Array> = {};
  for (const b of tg.buffers) {
    buffers[b.name] = Float32Array.from(b.init.data<Float32Array>());
    paramDims.set(b.name, b.init.dims);
  }

  const dropLast = o.dropLast && source.size > o.batchSize;
  const stepsPerEpoch = dropLast ? Math.floor(source.size / o.batchSize) : Math.ceil(source.size / o.batchSize);
  const optimizer = makeOptimizer(o.optimizer, o.epochs * stepsPerEpoch);
  const fingerprint = JSON.stringify({
    seed: o.seed,
    batchSize: o.batchSize,
    samples: source.size,
    params: tg.params.map((p) => [p.name, p.init.size]),
  });

  const rng = new Mulberry32(o.seed);
  let startEpoch = 0;
  let step = 0;
  const history: EpochRecord[] = [];
  let best: TrainState['best'];
  let badEpochs = 0;
  if (resumeFrom) {
    if (resumeFrom.format !== 'onnxpress.train/1') throw new OptionsError(expected('a state of format "onnxpress.train/1"', 'resumeFrom', resumeFrom.format));
    if (resumeFrom.fingerprint !== fingerprint) {
      throw new OptionsError(`The checkpoint was made by a different run (seed, batch size, data size or student differ): it has ${resumeFrom.fingerprint}, this run ${fingerprint}`);
    }
    for (const [k, a] of Object.entries(resumeFrom.params)) params[k]!.set(a);
    for (const [k, a] of Object.entries(resumeFrom.buffers)) {
      if (!buffers[k]) throw new OptionsError(`The checkpoint has buffer "${k}", which the student does not ${oneOf(Object.keys(buffers))}`);
      buffers[k].set(a);
    }
    optimizer.load(resumeFrom.optimizer);
    rng.state = resumeFrom.rng;
    startEpoch = resumeFrom.epoch;
    step = resumeFrom.step;
    history.push(...resumeFrom.history);
    best = resumeFrom.best && { ...resumeFrom.best, params: copyRecord(resumeFrom.best.params), buffers: copyRecord(resumeFrom.best.buffers) };
    badEpochs = resumeFrom.badEpochs;
  }

  const runner = await Runner.create(tg.model, { ep: o.ep, threads: o.threads, graphOptimizationLevel: 'extended' });
  let teacherRunner: Runner | undefined;
  try {
    let teacherInput: string | undefined;
    let teacherOut: string | undefined;
    if (teacher && (useTeacher || (val && !val.hasLabels))) {
      teacherRunner = await Runner.create(teacher, { ep: o.ep, threads: o.threads });
      const tIns = teacher.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
      if (keys.length !== 1 || tIns.length !== 1) throw new OptionsError(`Distillation needs one data input for teacher and student; the teacher takes ${oneOf(tIns)}, the data provides ${oneOf(keys)}`);
      teacherInput = tIns[0]!;
      teacherOut = o.teacherOutput ?? teacherRunner.outputNames[0]!;
      if (!teacherRunner.outputNames.includes(teacherOut)) throw new OptionsError(`The teacher has no output named "${teacherOut}" ${oneOf(teacherRunner.outputNames)}`);
    }
    const runTeacher = async (x: { dims: number[]; data: Float32Array }): Promise<Float32Array> => {
      const out = (await teacherRunner!.run({ [teacherInput!]: { dtype: 'float32', dims: x.dims, data: x.data } }, [teacherOut!]))[teacherOut!]!;
      if (out.dims.length !== 2 || out.dims[0] !== x.dims[0] || out.dims[1] !== classes) {
        throw new OptionsError(`The teacher's output "${teacherOut}" is [${out.dims.join(', ')}]; expected [${x.dims[0]}, ${classes}] logits like the student's`);
      }
      return out.data as Float32Array;
    };

    // teacher logits for the whole training set, once
    let cache: Float32Array | undefined;
    if (useTeacher && (o.teacherCache === 'on' || (o.teacherCache === 'auto' && !augmenting))) {
      cache = new Float32Array(source.size * classes);
      for (let s = 0; s < source.size; s += o.evalBatchSize) {
        const idx = Array.from({ length: Math.min(o.evalBatchSize, source.size - s) }, (_, i) => s + i);
        const g = source.gather(idx);
        cache.set(await runTeacher(g.feeds[keys[0]!]!), s * classes);
      }
    }

    const stateOf = (epoch: number): TrainState => ({
      format: 'onnxpress.train/1',
      epoch,
      step,
      rng: rng.state,
      params: copyRecord(params),
      buffers: copyRecord(buffers),
      optimizer: optimizer.state(),
      history: history.map((h) => ({ ...h })),
      ...(best ? { best: { ...best, params: copyRecord(best.params), buffers: copyRecord(best.buffers) } } : {}),
      badEpochs,
      fingerprint,
    });

    const validate = async (): Promise<{ metric: number; kind: 'top1' | 'teacherAgreement' } | undefined> => {
      if (!val) return undefined;
      const m = inferenceModel(student, toTensors(params, paramDims), toTensors(buffers, paramDims));
      if (val.hasLabels) {
        const r = await evaluate(m, val, { ep: o.ep, threads: o.threads, batchSize: o.evalBatchSize, output: o.logitsOutput });
        return { metric: r.top1, kind: 'top1' };
      }
      if (!teacherRunner) throw new OptionsError('The validation data has no labels: give a teacher to measure agreement with, or labelled validation data');
      const r = await compareOutputs(m, teacherRunner, val, { ep: o.ep, threads: o.threads, batchSize: o.evalBatchSize, output: o.logitsOutput });
      return { metric: r.top1Agreement, kind: 'teacherAgreement' };
    };

    const fetch = [tg.lossOutput, ...tg.params.map((p) => p.gradOutput), ...tg.buffers.map((b) => b.updateOutput)];
    let stoppedEarly = false;
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const t0 = performance.now();
      const perm = seededPermutation(source.size, rng.uint32());
      let lossSum = 0;
      let seen = 0;
      let lr = optimizer.lr;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (signal?.aborted) throw new PassError('Training was cancelled');
        const idx = perm.subarray(s * o.batchSize, Math.min(source.size, (s + 1) * o.batchSize));
        const n = idx.length;
        const g = source.gather(idx);
        if (augmenting) for (const k of imageKeys) augmentBatch(g.feeds[k]!, o.augment.cropPadding, o.augment.flip, rng);
        const feeds: Record<string, RunTensor> = {};
        for (const k of keys) feeds[feedName.get(k)!] = { dtype: 'float32', dims: g.feeds[k]!.dims, data: g.feeds[k]!.data };
        if (tg.labelsInput) {
          const onehot = new Float32Array(n * classes);
          for (let i = 0; i < n; i++) {
            const l = g.labels![i]!;
            if (l < 0 || l >= classes) throw new OptionsError(`Label ${l} of training sample ${idx[i]} is outside the student's ${classes} classes`);
            onehot[i * classes + l] = 1;
          }
          feeds[tg.labelsInput] = { dtype: 'float32', dims: [n, classes], data: onehot };
        }
        if (tg.teacherInput) {
          let t: Float32Array;
          if (cache) {
            t = new Float32Array(n * classes);
            for (let i = 0; i < n; i++) t.set(cache.subarray(idx[i]! * classes, (idx[i]! + 1) * classes), i * classes);
          } else t = await runTeacher(g.feeds[keys[0]!]!);
          feeds[tg.teacherInput] = { dtype: 'float32', dims: [n, classes], data: t };
        }
        for (const p of tg.params) feeds[p.name] = { dtype: 'float32', dims: paramDims.get(p.name)!, data: params[p.name]! };
        for (const b of tg.buffers) feeds[b.name] = { dtype: 'float32', dims: paramDims.get(b.name)!, data: buffers[b.name]! };
        const out = await runner.run(feeds, fetch);
        const l = Number((out[tg.lossOutput]!.data as Float32Array)[0]);
        if (!Number.isFinite(l)) {
          throw new PassError(`Training diverged: the loss is ${l} at epoch ${epoch + 1}, step ${s + 1} (learning rate ${optimizer.lr}); lower the learning rate or clip gradients (maxGradNorm)`);
        }
        lr = optimizer.step(
          tg.params.map((p) => ({
            name: p.name,
            value: params[p.name]!,
            grad: out[p.gradOutput]!.data as Float32Array,
            // weight decay on weights (rank ≥ 2), not on biases and BatchNormalization scales
            decay: paramDims.get(p.name)!.length >= 2,
          })),
        ).lr;
        afterStep?.(params, step + 1);
        for (const b of tg.buffers) buffers[b.name]!.set(out[b.updateOutput]!.data as Float32Array);
        step++;
        lossSum += l * n;
        seen += n;
        onProgress?.({
          epoch: epoch + 1,
          epochs: o.epochs,
          step: s + 1,
          stepsPerEpoch,
          globalStep: step,
          loss: lossSum / seen,
          lr,
          samplesPerSec: seen / ((performance.now() - t0) / 1000),
        });
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const v = await validate();
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: lossSum / seen,
        lr,
        samplesPerSec: seen / trainSeconds,
        seconds: (performance.now() - t0) / 1000,
        ...(v ? { val: v.metric, valMetric: v.kind } : {}),
      };
      history.push(record);
      if (v) {
        if (!best || v.metric > best.metric + o.minDelta) {
          best = { epoch: epoch + 1, metric: v.metric, params: copyRecord(params), buffers: copyRecord(buffers) };
          badEpochs = 0;
        } else badEpochs++;
      }
      onEpoch?.(record);
      await onCheckpoint?.(stateOf(epoch + 1));
      if (o.patience !== undefined && badEpochs >= o.patience && epoch + 1 < o.epochs) {
        stoppedEarly = true;
        break;
      }
    }

    const useBest = o.keepBest && best !== undefined;
    const finalParams = toTensors(useBest ? best!.params : params, paramDims);
    const finalBuffers = toTensors(useBest ? best!.buffers : buffers, paramDims);
    return {
      model: inferenceModel(student, finalParams, finalBuffers),
      params: finalParams,
      buffers: finalBuffers,
      history,
      epoch: useBest ? best!.epoch : history.length ? history[history.length - 1]!.epoch : startEpoch,
      ...(best ? { bestMetric: best.metric } : {}),
      stoppedEarly,
      steps: step,
      seconds: (performance.now() - started) / 1000,
      loss,
      options: o,
    };
  } finally {
    await runner.release();
    await teacherRunner?.release();
  }
}
