/**
 * Knowledge distillation (`distill` pass): trains a small student to match a teacher's soft targets — Hinton's KD at
 * temperature T, scaled by T², mixed with cross-entropy on hard labels by `alpha` (labels optional: alpha is 0 then).
 *
 * The student is a given ONNX model, or one of the built-in family (`students.ts`) scaled from the teacher's shape
 * (`studentWidth`, `studentDepth`) for plain CNNs and MLPs. Training is `train` (`../train/loop.ts`): seeded
 * shuffling and augmentation, validation every epoch, early stopping, best weights kept, resumable checkpoints.
 *
 * The output is the student in inference form (BatchNormalization folded into the convolutions by default), runnable
 * by onnxruntime, with its training recipe in `metadata_props` under `onnxpress.distill`.
 *
 * Hints (`hints`, FitNets): `weight · MSE` between a teacher tensor and a student tensor mapped to the teacher's
 * channels by a learned 1×1 adapter, trained jointly and discarded (`hints.ts`).
 */
import { z } from 'zod';
import { OptionsError } from '../errors.js';
import { evaluate } from '../eval/accuracy.js';
import type { Dataset } from '../eval/datasets.js';
import { cleanup, foldBatchNorm } from '../onnx/hygiene/index.js';
import { Model } from '../onnx/ir.js';
import type { Tensor } from '../onnx/tensor.js';
import { runPass, type Pass, type PassContext, type PassResult } from '../pass.js';
import { inferenceModel } from '../train/graph.js';
import { train, trainOptions, type EpochRecord, type TrainProgress, type TrainState } from '../train/loop.js';
import { OPTIMIZERS, optimizerOptions, type OptimizerOptions } from '../train/optim.js';
import { attachHints } from './hints.js';
import { describeTeacher, makeFromSpec, parameterCount, scaleSpec, type StudentSpec } from './students.js';

export { attachHints, type HintSpec, type HintedModel } from './hints.js';

export { describeTeacher, makeCnn, makeMlp, makeFromSpec, scaleSpec, parameterCount, featureShape, type CnnSpec, type MlpSpec, type StudentSpec, type ConvBlockSpec, type BuildOptions } from './students.js';

/** The metadata key under which the recipe is recorded. */
export const DISTILL_METADATA_KEY = 'onnxpress.distill';

function isDataset(v: unknown): v is Dataset {
  return typeof v === 'object' && v !== null && typeof (v as Dataset).batches === 'function' && typeof (v as Dataset).size === 'number';
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${v.constructor?.name ?? 'Object'})`;
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

/** An object option (a Dataset or Model); `z.any()` underneath so the schema stays representable as JSON Schema. */
function objectOption<T>(what: string, check: (v: unknown) => boolean, wanted: string) {
  return z
    .any()
    .superRefine((v, ctx) => {
      if (!check(v)) ctx.addIssue({ code: 'custom', message: `Expected ${wanted} for ${what} but received ${kindOf(v)}` });
    })
    .describe(`${what}: ${wanted}`) as unknown as z.ZodType<T>;
}

/** The options of the `distill` pass: one schema for the library, the CLI and docs. */
export const distillOptions = z
  .object({
    data: objectOption<Dataset>('data', isDataset, 'a Dataset (the training data; labels optional)'),
    val: objectOption<Dataset>('val', isDataset, 'a Dataset (validation data)').optional(),
    student: objectOption<Model>('student', (v) => v instanceof Model, 'a Model (the student to train)').optional(),
    studentWidth: z.number().positive().max(4).optional().describe('built-in student: channel and hidden-width multiplier (default 0.25)'),
    studentDepth: z.number().positive().max(4).optional().describe('built-in student: conv-block / hidden-layer count multiplier (default 1)'),
    ...trainOptions.omit({ optimizer: true }).shape,
    // T = 2, not train's 4: Hinton et al. (2015, §3) found that a much smaller student does best at intermediate
    // temperatures (2.5–4 for 30 hidden units on MNIST; higher ones all alike only for large students), and the
    // built-in students are a tenth of the teacher or less. Measured by bench/distill (width-0.25 student, 5 epochs,
    // Fashion-MNIST, paired seeds): T = 2 beat hard labels on average and T = 4 did not (see the bench's table).
    temperature: z.number().positive().default(2).describe('distillation temperature T (the KD term is scaled by T²)'),
    optimizer: z.union([z.enum(OPTIMIZERS), optimizerOptions]).default('adam').describe('optimizer kind, or full optimizer options'),
    lr: z.number().positive().optional().describe('learning rate (overrides optimizer.lr; default 1e-3)'),
    foldBatchNorm: z.boolean().default(true).describe('fold BatchNormalization into the convolutions of the output'),
    hints: z
      .array(
        z
          .object({
            teacher: z.string().min(1).describe('teacher tensor (value name), [B, C, H, W] or [B, F]'),
            student: z.string().min(1).describe('student tensor of the same rank and spatial size (channels may differ)'),
            weight: z.number().positive().default(1).describe('weight of the MSE term'),
          })
          .strict(),
      )
      .optional()
      .describe('hint losses (FitNets): MSE between a teacher tensor and a student tensor through a learned 1×1 adapter, discarded afterwards'),
  })
  .strict();

export type DistillOptionsInput = z.input<typeof distillOptions>;
export type DistillOptions = z.output<typeof distillOptions>;

/** The pass context plus training callbacks. */
export interface DistillContext extends PassContext {
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  onCheckpoint?: (state: TrainState) => void | Promise<void>;
  resumeFrom?: TrainState;
}

/** What `distill` reports; plain data. */
export interface DistillReport {
  teacher: { parameters: number; valTop1?: number };
  student: { source: 'given' | 'built-in'; parameters: number; spec?: StudentSpec; valTop1?: number };
  /** student / teacher parameters. */
  parameterRatio: number;
  loss: { temperature: number; alpha: number; useLabels: boolean; useTeacher: boolean; hints?: { teacher: string; student: string; weight: number; adapterParameters: number }[] };
  epochs: number;
  /** The epoch whose weights were kept. */
  epoch: number;
  stoppedEarly: boolean;
  steps: number;
  seconds: number;
  history: EpochRecord[];
}

/** What the `distill` pass returns. */
export interface DistillPassResult extends PassResult {
  report: DistillReport;
  history: EpochRecord[];
}

/**
 * Trainable parameters: elements of float initializers, BatchNormalization running statistics not counted.
 *
 * @example
 * ```ts
 * countParameters(await loadModel('fixtures/fmnist-cnn.onnx')); // 105962
 * ```
 */
export function countParameters(model: Model): number {
  const g = model.graph;
  const stats = new Set<string>();
  for (const n of g.nodes) if (n.opType === 'BatchNormalization') for (const i of [3, 4]) if (n.inputs[i]) stats.add(n.inputs[i]!.name);
  let total = 0;
  for (const v of g.initializers.values()) {
    const t = v.initializer!;
    if (!stats.has(v.name) && (t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'float64' || t.dtype === 'bfloat16')) total += t.size;
  }
  return total;
}

/** A copy of `o` without `keys`. */
function omit<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Omit<T, K> {
  const out = { ...o };
  for (const k of keys) delete out[k];
  return out;
}

/** The recipe recorded in metadata: every option but the data, models and callbacks. */
function recipe(o: DistillOptions, extra: Record<string, unknown>): string {
  return JSON.stringify({ ...omit(o, ['data', 'val', 'student']), ...extra });
}

async function runDistill(teacher: Model, o: DistillOptions, ctx: DistillContext): Promise<DistillPassResult> {
  if (o.student && (o.studentWidth !== undefined || o.studentDepth !== undefined)) {
    throw new OptionsError('Give either a student model or studentWidth/studentDepth for a built-in student, not both');
  }
  let student: Model;
  let spec: StudentSpec | undefined;
  if (o.student) student = o.student;
  else {
    spec = scaleSpec(describeTeacher(teacher), { width: o.studentWidth ?? 0.25, depth: o.studentDepth ?? 1 });
    const tOut = teacher.graph.outputs[0]!;
    const tIn = teacher.graph.inputs.find((v) => !v.initializer)!;
    student = makeFromSpec(spec, { seed: o.seed, inputName: tIn.name, outputName: tOut.name });
  }
  const optimizer: OptimizerOptions = typeof o.optimizer === 'string' ? { kind: o.optimizer } : { ...o.optimizer };
  if (o.lr !== undefined) optimizer.lr = o.lr;

  const { data, val, foldBatchNorm: fold } = o;
  // hints: train a student extended with the teacher's layers and the adapters, then keep only the student's weights
  const hinted = o.hints?.length ? attachHints(student, teacher, o.hints, { seed: o.seed }) : undefined;
  const result = await train(hinted?.model ?? student, data, {
    ...omit(o, ['data', 'val', 'student', 'studentWidth', 'studentDepth', 'lr', 'foldBatchNorm', 'optimizer', 'hints']),
    optimizer,
    teacher,
    ...(val ? { val } : {}),
    ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    ...(ctx.onEpoch ? { onEpoch: ctx.onEpoch } : {}),
    ...(ctx.onCheckpoint ? { onCheckpoint: ctx.onCheckpoint } : {}),
    ...(ctx.resumeFrom ? { resumeFrom: ctx.resumeFrom } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const own = (m: Map<string, Tensor>) => new Map([...m].filter(([k]) => student.graph.initializers.has(k)));
  const model = hinted ? inferenceModel(student, own(result.params), own(result.buffers)) : result.model;
  if (fold) {
    await foldBatchNorm(model);
    await cleanup(model, { steps: ['removeIdentity', 'removeUnused'] });
  }
  const notes: string[] = [];
  let teacherTop1: number | undefined;
  let studentTop1: number | undefined;
  if (val?.hasLabels) {
    teacherTop1 = (await evaluate(teacher, val, { ep: o.ep, threads: o.threads, batchSize: o.evalBatchSize, ...(o.teacherOutput ? { output: o.teacherOutput } : {}) })).top1;
    studentTop1 = (await evaluate(model, val, { ep: o.ep, threads: o.threads, batchSize: o.evalBatchSize })).top1;
  }
  const teacherParams = countParameters(teacher);
  const studentParams = countParameters(model);
  const report: DistillReport = {
    teacher: { parameters: teacherParams, ...(teacherTop1 !== undefined ? { valTop1: teacherTop1 } : {}) },
    student: { source: spec ? 'built-in' : 'given', parameters: studentParams, ...(spec ? { spec } : {}), ...(studentTop1 !== undefined ? { valTop1: studentTop1 } : {}) },
    parameterRatio: studentParams / teacherParams,
    loss: {
      temperature: result.loss.temperature ?? o.temperature,
      alpha: result.loss.alpha ?? o.alpha,
      useLabels: result.loss.useLabels,
      useTeacher: result.loss.useTeacher,
      ...(hinted
        ? {
            hints: hinted.adapters.map((a) => ({
              teacher: a.teacher,
              student: a.student,
              weight: a.weight,
              adapterParameters: a.params.reduce((s, n) => s + hinted.model.graph.initializers.get(n)!.initializer!.size, 0),
            })),
          }
        : {}),
    },
    epochs: result.history.length,
    epoch: result.epoch,
    stoppedEarly: result.stoppedEarly,
    steps: result.steps,
    seconds: result.seconds,
    history: result.history,
  };
  if (result.stoppedEarly) notes.push(`stopped early after epoch ${result.history.length}: no validation gain for ${o.patience} epochs`);
  if (!result.loss.useLabels) notes.push('pure distillation: the training data has no labels (or alpha is 0)');
  model.producerName = 'onnxpress';
  model.metadata.set(
    DISTILL_METADATA_KEY,
    recipe(o, {
      optimizer,
      loss: report.loss,
      student: spec ? { builtIn: spec } : 'given',
      trainSamples: data.size,
      epochsRun: result.history.length,
      keptEpoch: result.epoch,
      ...(studentTop1 !== undefined ? { valTop1: studentTop1 } : {}),
    }),
  );
  return { model, modified: true, notes, report, history: result.history };
}

/**
 * `distill`: trains a student (given, or built from the teacher's shape) on the teacher's soft targets and returns
 * it in inference form. Returns a new model (the teacher is not changed).
 *
 * @example
 * ```ts
 * const r = (await runPass(distillPass, teacher, { data, studentWidth: 0.25, epochs: 5 })) as DistillPassResult;
 * ```
 */
export const distillPass: Pass<typeof distillOptions> = {
  name: 'distill',
  description: "Knowledge distillation: train a smaller student on the teacher's soft targets (and hard labels, if any)",
  inPlace: false,
  options: distillOptions,
  run: (model, options, ctx) => runDistill(model, options, ctx as DistillContext),
};

/** Options of the `distill` function: the pass options plus training callbacks. */
export type DistillFunctionOptions = DistillOptionsInput & Omit<DistillContext, 'note' | 'seed'>;

/**
 * Distills `teacher` into a student. See `distillOptions` for every option.
 *
 * @example
 * ```ts
 * import { loadModel, loadDataset, distill, saveModel } from 'onnxpress';
 * const teacher = await loadModel('fixtures/fmnist-teacher.onnx');
 * const data = await loadDataset('train.json');
 * const { model, history, report } = await distill(teacher, { data, studentWidth: 0.25, epochs: 5, batchSize: 128 });
 * await saveModel(model, 'student.onnx');
 * ```
 */
export async function distill(teacher: Model, options: DistillFunctionOptions): Promise<{ model: Model; history: EpochRecord[]; report: DistillReport; notes: string[] }> {
  const { onProgress, onEpoch, onCheckpoint, resumeFrom, signal, ...rest } = options;
  const ctx: DistillContext = { ...(onProgress ? { onProgress } : {}), ...(onEpoch ? { onEpoch } : {}), ...(onCheckpoint ? { onCheckpoint } : {}), ...(resumeFrom ? { resumeFrom } : {}), ...(signal ? { signal } : {}) };
  const r = (await runPass(distillPass, teacher, rest, ctx)) as DistillPassResult;
  return { model: r.model, history: r.history, report: r.report, notes: r.notes ?? [] };
}
