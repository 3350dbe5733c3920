/**
 * The `quantize.*` passes and `quantize(model, options)`: one options schema for every mode, the decisions that
 * depend on the machine (activation type, reduced weight range), and the two searches on top of the quantizers.
 *
 * | pass | what |
 * |---|---|
 * | `quantize.static` | calibrate → QDQ (or QOperator) int8 → accuracy-aware fallback → latency-aware placement |
 * | `quantize.dynamic` | DynamicQuantizeLinear + integer MatMul/Conv; accuracy check and float-vs-int8 timing |
 * | `quantize.weightOnly` | int8 or 4-bit weights, float compute; accuracy check only (timing when asked) |
 *
 * Cases of the accuracy-aware search (`maxAccuracyDrop` with `evalData`):
 * 1. The metric is top-1 on `evalData` when it has labels, else top-1 agreement with the float model
 *    (`compareOutputs`); the drop is in percentage points against the float model on the same samples.
 * 2. The all-int8 model meets the tolerance: nothing falls back.
 * 3. Else quantized nodes are ranked by the SQNR of their output in the quantized model against the float model
 *    (read as extra outputs of both, on calibration samples; lowest first) and the 1, 2, 4, … lowest fall back to
 *    float until the tolerance holds; then a binary search finds the smallest such count, within the trial/time
 *    budget. The best model found is kept: the fewest fallbacks that meet the tolerance, else the smallest drop.
 *
 * Cases of the latency-aware placement (`latency: 'auto'`, default for static and dynamic):
 * 1. Candidates are timed interleaved on the target EP at the user's batch (rounds, medians): float, all-int8,
 *    int8 with the first Conv float, with the last Gemm/MatMul float, with both, with every node whose int8 kernel
 *    profiled slower than its float kernel; then greedy single-node fallbacks of those nodes and of nodes known to
 *    be slow in int8 (1-channel Convs, nodes next to MaxPool), each kept only when it is faster.
 * 2. The fastest placement that is faster than float by more than the noise margin, and whose accuracy meets the
 *    tolerance (checked lazily, fastest first), wins (`choosePlacement`).
 * 3. When none is faster than float, the float model comes back unchanged (`modified: false`) and the report says so.
 *
 * Every resolved option and decision is recorded in the output model's metadata under `onnxpress.quantize`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { EvaluationError, OnnxpressError, OptionsError, oneOf } from '../errors.js';
import { compareOutputs, evaluate } from '../eval/accuracy.js';
import { loadDataset, type Batch, type Dataset } from '../eval/datasets.js';
import { toFloat32 } from '../onnx/codecs.js';
import { DTYPES, elementCount, type DType, type TypedArray } from '../onnx/dtype.js';
import { formatTable } from '../onnx/inspect.js';
import type { Model, Node } from '../onnx/ir.js';
import { parseCpuinfo } from '../eval/machine.js';
import { profileNodes } from '../onnx/profile.js';
import { EXECUTION_PROVIDERS, Runner, type ExecutionProvider } from '../onnx/runner.js';
import { parseOptions, runPass, type Pass, type PassContext, type PassResult } from '../pass.js';
import { calibrate } from './calibrate/index.js';
import { quantizeDynamic, type DynamicOptions } from './dynamic.js';
import { STATIC_HANDLERS } from './ops/table.js';
import { quantizeStatic, staticOptions, tensorsToCalibrate } from './static.js';
import type { ActivationType, FallbackReason, Feeds, NodeReport, QuantizeOutput, QuantizeReport, TensorRange } from './types.js';
import { quantizeWeightOnly, type WeightOnlyOptions } from './weightOnly.js';
import { ensureOpset } from '../onnx/opset.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { median } from '../util/stats.js';

// ---------------------------------------------------------------------------------------------------------------
// Options

/** Where calibration or evaluation samples come from: a dataset descriptor path, a Dataset, or batches of feeds. */
export type DataSource = string | Dataset | AsyncIterable<Feeds>;

/**
 * Quantization modes.
 *
 * @example
 * ```ts
 * for (const mode of QUANTIZE_MODES) console.log(mode); // static, dynamic, weight-only
 * ```
 */
export const QUANTIZE_MODES = ['static', 'dynamic', 'weight-only'] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];

function isDataset(v: unknown): v is Dataset {
  return typeof v === 'object' && v !== null && typeof (v as Dataset).batches === 'function' && typeof (v as Dataset).size === 'number';
}

function isAsyncIterable(v: unknown): v is AsyncIterable<Feeds> {
  return typeof v === 'object' && v !== null && typeof (v as AsyncIterable<Feeds>)[Symbol.asyncIterator] === 'function';
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object with keys ${oneOf(Object.keys(v as object), 6)}`;
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

/**
 * A data option. `z.any()` underneath (not `z.custom`) so that the schema stays representable as JSON Schema
 * for docs and config editors; the check below does what `z.custom` would.
 */
function dataOption(what: string, { iterable }: { iterable: boolean }) {
  return z
    .any()
    .superRefine((v, ctx) => {
      if (typeof v === 'string' && v.length > 0) return;
      if (isDataset(v)) return;
      if (iterable && isAsyncIterable(v)) return;
      const wanted = iterable ? 'a dataset descriptor path, a Dataset or an AsyncIterable of feeds' : 'a dataset descriptor path or a Dataset';
      ctx.addIssue({ code: 'custom', message: `Expected ${wanted} for ${what} but received ${kindOf(v)}` });
    })
    .describe(`${what}: a dataset descriptor (JSON) path, a Dataset${iterable ? ', or an AsyncIterable of feeds' : ''}`) as unknown as z.ZodType<DataSource>;
}

/** The fields every mode shares; modes ignore what does not apply to them, and the checks below refuse what cannot. */
const baseShape = {
  calibration: dataOption('calibration', { iterable: true }).optional(),
  samples: z.number().int().min(1).default(512).describe('Calibration samples to use (at most)'),
  calibrationBatchSize: z.number().int().min(1).default(32).describe('Samples per calibration run'),
  method: z.enum(['minmax', 'percentile', 'entropy', 'mse']).default('minmax').describe('How activation ranges are chosen from calibration data'),
  percentile: z.number().min(50).max(100).default(99.999).describe('percentile method: the percentage of values kept inside the range'),
  movingAverage: z.boolean().optional().describe('minmax only: moving average of per-batch ranges instead of the global min/max'),
  perChannel: z.boolean().default(true).describe('One weight scale per output channel (Conv, Gemm, MatMul)'),
  activationType: z.enum(['uint8', 'int8']).optional().describe('Activation element type (default: decided from the CPU and EP, see the report)'),
  weightType: z.enum(['int8', 'uint8']).default('int8').describe('Weight element type for 8-bit modes'),
  symmetricActivations: z.boolean().default(false).describe('Zero point in the middle of the activation range'),
  reduceRange: z.boolean().optional().describe('7-bit weights, for CPUs without VNNI where u8×s8 sums can saturate (default: decided from /proc/cpuinfo)'),
  format: z.enum(['qdq', 'qoperator']).default('qdq').describe('QDQ pairs around float ops, or QLinear* ops'),
  exclude: z.array(z.string().min(1)).default([]).describe('Node names, op types or glob patterns (*, ?) to keep in float'),
  // the static quantizer's own declaration: { [tensor]: { min?, max?, type? } }
  overrides: staticOptions.shape.overrides,
  opTypes: z.array(z.string().min(1)).optional().describe('Only quantize these op types (default: every op type with an integer kernel)'),
  bits: z.union([z.literal(8), z.literal(4)]).optional().describe('weight-only: 8 (int8 DequantizeLinear) or 4 (MatMulNBits, blockwise); default 8'),
  blockSize: z.number().int().min(16).optional().describe('weight-only 4-bit: elements per quantization block'),
  maxAccuracyDrop: z.number().min(0).max(100).optional().describe('Largest accepted top-1 drop, in percentage points; nodes fall back to float until it holds'),
  evalData: dataOption('evalData', { iterable: false }).optional(),
  evalSamples: z.number().int().min(1).optional().describe('Evaluate on the first n samples of evalData (default all)'),
  latency: z.enum(['auto', 'off']).optional().describe("'auto': time placements and never return a model slower than float (default for static and dynamic)"),
  ep: z.enum(EXECUTION_PROVIDERS as unknown as [ExecutionProvider, ...ExecutionProvider[]]).default('cpu').describe('Execution provider to calibrate, evaluate and time on'),
  threads: z.number().int().min(1).optional().describe('Intra-op threads (default: onnxruntime’s choice)'),
  batch: z
    .union([z.number().int().min(1), z.array(z.number().int().min(1)).min(1)])
    .default(32)
    .describe('Batch size(s) the latency is measured at; with several, a placement must beat float at each'),
  latencyRounds: z.number().int().min(1).max(101).default(7).describe('Interleaved timing rounds per comparison (the median is used)'),
  latencyClock: z
    .enum(['wall', 'cpu'])
    .default('wall')
    .describe("'wall': elapsed time; 'cpu': the process's CPU time per run, steadier on a busy machine (meaningful with threads: 1)"),
  maxTrials: z.number().int().min(1).default(16).describe('Accuracy trials and greedy latency steps, each at most'),
  timeBudgetSeconds: z.number().positive().default(600).describe('Wall-time budget of the accuracy and latency searches'),
  seed: z.number().int().min(0).default(0).describe('Seed for synthesized timing inputs'),
};

type BaseOutput = z.output<z.ZodObject<typeof baseShape>>;

/** Cross-field checks, per mode. */
function checkFields(o: BaseOutput & { mode: QuantizeMode }, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (o.mode === 'static' && o.calibration === undefined) {
    issue('calibration', "static quantization needs calibration data (a dataset descriptor path, a Dataset or an AsyncIterable of feeds); mode 'dynamic' or 'weight-only' needs none");
  }
  if (o.maxAccuracyDrop !== undefined && o.evalData === undefined) {
    issue('evalData', 'maxAccuracyDrop needs evalData: a labelled dataset (top-1) or any dataset (agreement with the float model)');
  }
  if (o.evalSamples !== undefined && o.evalData === undefined) issue('evalSamples', 'evalSamples applies to evalData, which is not set');
  if (o.bits !== undefined && o.mode !== 'weight-only') issue('bits', `bits applies to mode 'weight-only' only, not '${o.mode}'`);
  if (o.blockSize !== undefined && !(o.mode === 'weight-only' && o.bits === 4)) issue('blockSize', "blockSize applies to mode 'weight-only' with bits 4 only");
  if (o.movingAverage !== undefined && o.method !== 'minmax') issue('movingAverage', `movingAverage applies to method 'minmax' only, not '${o.method}'`);
  if (o.format === 'qoperator' && o.mode !== 'static') issue('format', `format applies to mode 'static' only, not '${o.mode}'`);
  if (Object.keys(o.overrides).length && o.mode !== 'static') issue('overrides', `overrides apply to mode 'static' only (activation ranges and types), not '${o.mode}'`);
  for (const [name, ov] of Object.entries(o.overrides)) {
    if (ov.min !== undefined && ov.max !== undefined && !(ov.min <= ov.max)) issue('overrides', `"${name}": min ${ov.min} is above max ${ov.max}`);
  }
}

/**
 * The one options schema of `quantize()`; the `quantize.*` passes take the same fields without `mode`.
 *
 * @example
 * ```ts
 * quantizeOptions.parse({ mode: 'static', calibration: 'calib.json', maxAccuracyDrop: 0.3, evalData: 'test.json' });
 * ```
 */
export const quantizeOptions = z
  .strictObject({ mode: z.enum(QUANTIZE_MODES).default('static').describe('static (calibrated activations), dynamic (ranges at run time) or weight-only'), ...baseShape })
  .superRefine((o, ctx) => checkFields(o, ctx));
export type QuantizeOptions = z.input<typeof quantizeOptions>;
type ParsedOptions = z.output<typeof quantizeOptions>;

function modeSchema(mode: QuantizeMode) {
  return z.strictObject(baseShape).superRefine((o, ctx) => checkFields({ ...o, mode }, ctx));
}

/**
 * Options of `quantize.static` (the fields of `quantizeOptions` without `mode`).
 *
 * @example
 * ```ts
 * quantizeStaticOptions.parse({ calibration: 'calib.json', method: 'entropy' });
 * ```
 */
export const quantizeStaticOptions = modeSchema('static');
/**
 * Options of `quantize.dynamic`.
 *
 * @example
 * ```ts
 * quantizeDynamicOptions.parse({ perChannel: false });
 * ```
 */
export const quantizeDynamicOptions = modeSchema('dynamic');
/**
 * Options of `quantize.weightOnly`.
 *
 * @example
 * ```ts
 * quantizeWeightOnlyOptions.parse({ bits: 4, blockSize: 64 });
 * ```
 */
export const quantizeWeightOnlyOptions = modeSchema('weight-only');

// ---------------------------------------------------------------------------------------------------------------
// Machine-dependent defaults

/** What the CPU offers that matters for int8 kernels. */
export interface CpuFeatures {
  arch: string;
  /** 8-bit dot-product instructions (x86 AVX512-VNNI / AVX-VNNI, or Arm dot product). */
  vnni: boolean;
  /** Intel AMX int8 tiles. */
  amx: boolean;
  /** The relevant flags found, e.g. ["avx2", "avx512_vnni"]. */
  flags: string[];
  /** Where the flags came from. */
  source: string;
}

const RELEVANT_FLAGS = ['avx2', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_int8', 'asimddp', 'i8mm'];

/**
 * Reads the CPU's int8-relevant features from /proc/cpuinfo (or from `cpuinfo` text, for tests).
 *
 * @example
 * ```ts
 * detectCpu(); // { arch: 'x64', vnni: true, amx: false, flags: ['avx2', 'avx512f', 'avx512_vnni'], source: '/proc/cpuinfo' }
 * ```
 */
export function detectCpu(cpuinfo?: string, arch: string = process.arch): CpuFeatures {
  let text = cpuinfo;
  let source = cpuinfo === undefined ? '/proc/cpuinfo' : 'given';
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
      source = 'unavailable (no /proc/cpuinfo)';
    }
  }
  const all = new Set(parseCpuinfo(text).allFlags);
  const flags = RELEVANT_FLAGS.filter((f) => all.has(f));
  return {
    arch,
    vnni: all.has('avx512_vnni') || all.has('avx_vnni') || all.has('asimddp'),
    amx: all.has('amx_int8'),
    flags,
    source,
  };
}

/** A resolved default and why it was chosen. */
export interface Decision<T> {
  value: T;
  why: string;
}

const isX86 = (arch: string) => arch === 'x64' || arch === 'ia32';

/**
 * The activation type when the user gave none.
 *
 * @example
 * ```ts
 * decideActivationType('cpu', detectCpu()).value; // 'uint8' on x86
 * ```
 */
export function decideActivationType(ep: ExecutionProvider, cpu: CpuFeatures): Decision<ActivationType> {
  if (ep !== 'cpu') return { value: 'int8', why: `${ep}: GPU int8 kernels take symmetric signed activations` };
  if (isX86(cpu.arch)) {
    return {
      value: 'uint8',
      why: 'x86 CPU: onnxruntime converts int8 activations to uint8 and then leaves tensors with several consumers (residual shortcuts) in float (measured); uint8 avoids it',
    };
  }
  return { value: 'int8', why: `${cpu.arch} CPU: onnxruntime's default signed int8 activations (S8S8)` };
}

/**
 * Whether weights use 7 bits, when the user did not say.
 *
 * @example
 * ```ts
 * decideReduceRange('cpu', detectCpu('flags : avx2', 'x64')).value; // true
 * ```
 */
export function decideReduceRange(ep: ExecutionProvider, cpu: CpuFeatures): Decision<boolean> {
  if (ep !== 'cpu') return { value: false, why: `${ep}: full 8-bit weights` };
  if (!isX86(cpu.arch)) return { value: false, why: `${cpu.arch} CPU: no u8×s8 saturation issue` };
  if (cpu.vnni || cpu.amx) {
    const which = cpu.flags.filter((f) => /vnni|amx/.test(f)).join(', ');
    return { value: false, why: `x86 CPU with ${which}: 8-bit dot products accumulate in 32 bits, full 8-bit weights are safe` };
  }
  return {
    value: true,
    why: `x86 CPU without VNNI (flags: ${cpu.flags.join(', ') || 'none of ' + RELEVANT_FLAGS.slice(0, 6).join('/')}; from ${cpu.source}): u8×s8 pairs are summed in 16 bits (VPMADDUBSW) and can saturate, so weights use 7 bits`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Results

/** A node kept in float, and why. */
export interface KeptFloat {
  node: string;
  opType: string;
  reason: FallbackReason;
  detail?: string;
}

/** One trial of the accuracy-aware search. */
export interface AccuracyTrial {
  /** Nodes in float for accuracy in this trial. */
  fellBack: string[];
  /** Score in percent (top-1 or agreement). */
  score: number;
  /** Drop against the float model, in percentage points. */
  dropPp: number;
  meets: boolean;
}

/** What the accuracy check found. */
export interface AccuracyReport {
  metric: 'top1' | 'agreement';
  samples: number;
  /** Float model's score in percent (100 for agreement). */
  float: number;
  /** Returned model's score in percent. */
  quantized: number;
  dropPp: number;
  tolerancePp: number;
  met: boolean;
  trials: AccuracyTrial[];
}

/** One timed placement. */
export interface PlacementTiming {
  name: string;
  /** Nodes in float beyond the accuracy fallbacks. */
  floatNodes: string[];
  /** Median milliseconds per run at the report's batch. */
  ms: number;
  /** ms of the float model measured in the same interleaved rounds. */
  floatMs: number;
  /** ms / floatMs (with several batch sizes: the worst ratio over them). */
  ratio: number;
  /** Ratio per batch size, when several were timed. */
  byBatch?: Record<string, number>;
  /** Whether its accuracy meets the tolerance (undefined when not checked or no tolerance). */
  accuracyOk?: boolean;
  /** True when ms and ratio come from the head-to-head re-timing against float that the winner gets. */
  confirmed?: boolean;
}

/** What the latency-aware placement measured and decided. */
export interface LatencyReport {
  ep: ExecutionProvider;
  /** Batch sizes timed; a placement's ratio is its worst over them. */
  batches: number[];
  rounds: number;
  threads?: number;
  placements: PlacementTiming[];
  /** The chosen placement's name ('float' when nothing was faster). */
  chosen: string;
  /** chosen ms / float ms (1 when float is returned). */
  ratio: number;
  why: string;
}

/** Everything `quantize()` reports. */
export interface QuantizeResultReport extends QuantizeReport {
  /** 'quantized', or 'float' when the float model was returned because no placement beat it. */
  outcome: 'quantized' | 'float';
  /** False only when a goal the user set (maxAccuracyDrop) could not be met; the best model is returned anyway. */
  goalMet: boolean;
  /** Every resolved option and decision (also recorded in the model's metadata). */
  resolved: Record<string, unknown>;
  keptFloat: KeptFloat[];
  accuracy?: AccuracyReport;
  latency?: LatencyReport;
  seconds: { total: number; calibration: number; quantization: number; accuracy: number; latency: number };
}

/** What the `quantize.*` passes return: a PassResult with the report. */
export interface QuantizePassResult extends PassResult {
  report: QuantizeResultReport;
}

/** Stages reported through `QuantizeContext.onProgress`. */
export type QuantizeStage = 'calibrate' | 'evaluate' | 'sqnr' | 'latency';

/** A timing function: median ms per run for each named model, measured interleaved on the same feeds. */
export type LatencyTimer = (
  models: { name: string; model: Model }[],
  feeds: Feeds,
  options: { ep: ExecutionProvider; threads?: number; rounds: number; clock?: 'wall' | 'cpu' },
) => Promise<Map<string, number>>;

/** The pass context plus what quantization can use: progress, and a timer to inject (tests). */
export interface QuantizeContext extends PassContext {
  onProgress?: (stage: QuantizeStage, done: number, total: number) => void;
  /** Replaces wall-clock timing (tests inject timings here). */
  timeLatency?: LatencyTimer;
  /** /proc/cpuinfo text to decide from instead of this machine's (tests). */
  cpuinfo?: string;
  /** CPU architecture to decide for instead of `process.arch` (tests). */
  arch?: string;
}

/**
 * The metadata_props key under which the recipe (every resolved option and decision) is recorded as JSON.
 *
 * @example
 * ```ts
 * JSON.parse((await loadModel('cnn.int8.onnx')).metadata.get(QUANTIZE_METADATA_KEY)!).reduceRange; // { value: true, why: '…' }
 * ```
 */
export const QUANTIZE_METADATA_KEY = 'onnxpress.quantize';

// ---------------------------------------------------------------------------------------------------------------
// Placement decision (pure)

/** A placement to decide among: its timing ratio against float and, once known, whether accuracy holds. */
export interface PlacementChoice {
  name: string;
  /** ms / float ms, from the same interleaved rounds. */
  ratio: number;
  accuracyOk?: boolean;
  /** Nodes it keeps in float for speed (fewer wins among placements equally fast). */
  floatNodes?: readonly string[];
}

/**
 * Candidates must beat float by more than this fraction (timing noise) to be chosen.
 *
 * @example
 * ```ts
 * choosePlacement([{ name: 'int8', ratio: 1 - LATENCY_MARGIN / 2 }]); // 'float'
 * ```
 */
export const LATENCY_MARGIN = 0.03;

/**
 * Picks the placement to keep: among those that beat float by more than `margin` and are not known to miss the
 * accuracy tolerance, the one with the fewest float nodes whose ratio is within `margin` of the fastest: a speed
 * difference under the timing noise should not cost file size. 'float' when none beats float. A candidate with
 * `accuracyOk` undefined is returned as is: the caller checks its accuracy, records the answer and asks again.
 *
 * @example
 * ```ts
 * choosePlacement([{ name: 'int8', ratio: 1.16 }, { name: 'first-conv-float', ratio: 0.97 }]); // 'float'
 * choosePlacement([{ name: 'int8', ratio: 0.5, accuracyOk: false }, { name: 'first-conv-float', ratio: 0.6 }]); // 'first-conv-float'
 * choosePlacement([{ name: 'int8', ratio: 0.62, floatNodes: [] }, { name: 'first-conv-float', ratio: 0.61, floatNodes: ['conv1'] }]); // 'int8'
 * ```
 */
export function choosePlacement(candidates: readonly PlacementChoice[], margin = LATENCY_MARGIN): string {
  const eligible = candidates.filter((c) => c.name !== 'float' && c.accuracyOk !== false && c.ratio < 1 - margin);
  if (!eligible.length) return 'float';
  const fastest = Math.min(...eligible.map((c) => c.ratio));
  let best: PlacementChoice | undefined;
  for (const c of eligible) {
    if (c.ratio > fastest + margin) continue;
    const floats = c.floatNodes?.length ?? 0, bestFloats = best?.floatNodes?.length ?? 0;
    if (!best || floats < bestFloats || (floats === bestFloats && c.ratio < best.ratio)) best = c;
  }
  return best!.name;
}

/** What `decidePlacement` may call: an accuracy check (when there is a tolerance) and a head-to-head re-timing. */
export interface PlacementChecks {
  accuracyOk?: (name: string) => Promise<boolean>;
  retime: (name: string) => Promise<{ ms: number; floatMs: number; ratio?: number; byBatch?: Record<string, number> }>;
}

/**
 * Decides among timed placements: the fastest that beats float (`choosePlacement`), whose accuracy meets the
 * tolerance (checked lazily, fastest first), and that still beats float when timed again head to head in fresh
 * rounds (a lucky round must not pick a slower model). A placement failing either check is passed over for the
 * next best; each check runs at most once per placement, and the answers are written into `placements`.
 *
 * @example
 * ```ts
 * await decidePlacement(placements, { retime: async (name) => ({ ms: 0.5, floatMs: 1 }) }); // 'int8'
 * ```
 */
export async function decidePlacement(placements: PlacementTiming[], checks: PlacementChecks, margin = LATENCY_MARGIN): Promise<string> {
  let chosen = choosePlacement(placements, margin);
  while (chosen !== 'float') {
    const p = placements.find((x) => x.name === chosen)!;
    if (p.accuracyOk === undefined && checks.accuracyOk) {
      p.accuracyOk = await checks.accuracyOk(chosen);
      if (!p.accuracyOk) {
        chosen = choosePlacement(placements, margin);
        continue;
      }
    }
    if (!p.confirmed) {
      const t = await checks.retime(chosen);
      p.confirmed = true;
      p.ms = t.ms;
      p.floatMs = t.floatMs;
      p.ratio = t.ratio ?? t.ms / t.floatMs;
      if (t.byBatch) p.byBatch = t.byBatch;
      if (!(p.ratio < 1 - margin)) {
        chosen = choosePlacement(placements, margin);
        continue;
      }
    }
    return chosen;
  }
  return 'float';
}

// ---------------------------------------------------------------------------------------------------------------
// Feeds

interface InputInfo {
  name: string;
  dtype: DType;
  shape?: readonly (number | string | null)[];
}

function modelInputs(model: Model): InputInfo[] {
  return model.graph.inputs.filter((v) => !v.initializer).map((v) => ({ name: v.name, dtype: v.elemType ?? 'float32', shape: v.shape }));
}

function castTo(data: TypedArray, from: DType, to: DType, input: string): TypedArray {
  if (from === to) return data;
  if (to === 'float32') return toFloat32(data, from, data.length);
  const Ctor = DTYPES[to].array;
  if (!Ctor || to === 'int64' || to === 'uint64') throw new EvaluationError(`Cannot feed ${from} data to model input "${input}", which takes ${to}`);
  const out = new Ctor(data.length) as unknown as number[];
  for (let i = 0; i < data.length; i++) out[i] = Number((data as ArrayLike<number | bigint>)[i]);
  return out as unknown as TypedArray;
}

/** A dataset batch as model feeds (a single unnamed dataset input feeds the model's first input). */
function batchFeeds(inputs: InputInfo[], batch: Batch): Feeds {
  const feeds: Feeds = {};
  const keys = Object.keys(batch.feeds);
  for (const key of keys) {
    const info = inputs.find((i) => i.name === key) ?? (keys.length === 1 ? inputs[0] : undefined);
    if (!info) throw new EvaluationError(`Dataset input "${key}" is not a model input ${oneOf(inputs.map((i) => i.name))}`);
    const f = batch.feeds[key]!;
    feeds[info.name] = { dtype: info.dtype, dims: f.dims, data: castTo(f.data, f.dtype, info.dtype, info.name) };
  }
  return feeds;
}

function rowsOf(feeds: Feeds): number {
  const first = Object.values(feeds)[0];
  return first?.dims[0] ?? 0;
}

/** Rows [start, start + count) of every feed. */
function sliceRows(feeds: Feeds, start: number, count: number): Feeds {
  const out: Feeds = {};
  for (const [k, t] of Object.entries(feeds)) {
    const per = elementCount(t.dims.slice(1));
    const data = (t.data as TypedArray).subarray(start * per, (start + count) * per);
    out[k] = { dtype: t.dtype, dims: [count, ...t.dims.slice(1)], data };
  }
  return out;
}

/** `rows` rows made by cycling through the samples of `batches`. */
function cycleRows(batches: Feeds[], rows: number): Feeds | undefined {
  if (!batches.length || rowsOf(batches[0]!) === 0) return undefined;
  const first = batches[0]!;
  const out: Feeds = {};
  for (const [k, t] of Object.entries(first)) {
    const per = elementCount(t.dims.slice(1));
    const Ctor = DTYPES[t.dtype].array!;
    const data = new Ctor(rows * per);
    let r = 0;
    outer: for (;;) {
      for (const b of batches) {
        const src = b[k]!;
        const n = src.dims[0]!;
        for (let i = 0; i < n; i++) {
          data.set((src.data as TypedArray).subarray(i * per, (i + 1) * per) as never, r * per);
          if (++r === rows) break outer;
        }
      }
    }
    out[k] = { dtype: t.dtype, dims: [rows, ...t.dims.slice(1)], data };
  }
  return out;
}

/** Feeds from the model's input types (random values), when every dim but the first is known. */
function synthesizeFeeds(inputs: InputInfo[], rows: number, seed: number): Feeds | undefined {
  const out: Feeds = {};
  let s = (seed * 2654435761 + 1) >>> 0;
  for (const i of inputs) {
    const rest = i.shape?.slice(1);
    if (!rest || rest.some((d) => typeof d !== 'number')) return undefined;
    if (!DTYPES[i.dtype].float || i.dtype !== 'float32') return undefined;
    const dims = [rows, ...(rest as number[])];
    const data = new Float32Array(elementCount(dims));
    for (let j = 0; j < data.length; j++) {
      s = (s * 1103515245 + 12345) >>> 0;
      data[j] = s / 2 ** 32 - 0.5;
    }
    out[i.name] = { dtype: 'float32', dims, data };
  }
  return out;
}

/** Up to `want` samples of a data source, as feeds of at most `chunk` rows each. */
async function takeSamples(source: Dataset | undefined, inputs: InputInfo[], want: number, chunk: number): Promise<Feeds[]> {
  if (!source) return [];
  const out: Feeds[] = [];
  let got = 0;
  for await (const b of source.batches(Math.min(chunk, want))) {
    const take = Math.min(b.size, want - got);
    const f = batchFeeds(inputs, b);
    out.push(take < b.size ? sliceRows(f, 0, take) : f);
    got += take;
    if (got >= want) break;
  }
  return out;
}

/** Passes an AsyncIterable through while keeping its first `want` samples. */
function recording(source: AsyncIterable<Feeds>, want: number, kept: Feeds[]): AsyncIterable<Feeds> {
  let got = 0;
  return {
    async *[Symbol.asyncIterator]() {
      for await (const f of source) {
        if (got < want) {
          const n = rowsOf(f);
          kept.push(n > want - got ? sliceRows(f, 0, want - got) : f);
          got += Math.min(n, want - got);
        }
        yield f;
      }
    },
  };
}

async function openDataset(source: string | Dataset, model: Model, what: string): Promise<Dataset> {
  if (typeof source !== 'string') return source;
  try {
    return await loadDataset(source, { inputNames: modelInputs(model).map((i) => i.name) });
  } catch (e) {
    if (e instanceof OnnxpressError) {
      (e as Error).message = `${what}: ${(e as Error).message}`;
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Model helpers

function nodeByName(model: Model): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of model.graph.nodes) if (n.name) m.set(n.name, n);
  return m;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/**
 * Resolves `exclude` entries (node names, op types, glob patterns) to node names; an entry that matches nothing is
 * an OptionsError listing the op types and nodes that exist.
 *
 * @example
 * ```ts
 * resolveExclude(model, ['Gemm', '/features/*']); // ['/classifier/classifier.1/Gemm', …, '/features/features.0/Conv', …]
 * ```
 */
export function resolveExclude(model: Model, exclude: readonly string[]): string[] {
  const nodes = model.graph.nodes;
  const out = new Set<string>();
  for (const entry of exclude) {
    let hit = false;
    const re = /[*?]/.test(entry) ? globToRegExp(entry) : undefined;
    for (const n of nodes) {
      if (!n.name) continue;
      if (n.name === entry || n.opType === entry || (re && re.test(n.name))) {
        out.add(n.name);
        hit = true;
      }
    }
    if (!hit) {
      const ops = [...new Set(nodes.map((n) => n.opType))];
      throw new OptionsError(`exclude: "${entry}" matches no node name, op type or pattern (op types: ${oneOf(ops)}; nodes: ${oneOf(nodes.map((n) => n.name).filter(Boolean))})`);
    }
  }
  return [...out];
}

/** The first Conv in graph order and the last Gemm/MatMul (the usual "keep float" pair). */
function endpoints(model: Model): { firstConv?: Node; lastGemm?: Node } {
  const nodes = model.graph.nodes;
  const firstConv = nodes.find((n) => n.opType === 'Conv' && n.name);
  const lastGemm = [...nodes].reverse().find((n) => (n.opType === 'Gemm' || n.opType === 'MatMul') && n.name);
  return { firstConv, lastGemm };
}

/** Input channels per group of a Conv whose weight is an initializer. */
function convInputChannels(n: Node): number | undefined {
  const w = n.inputs[1]?.initializer;
  if (!w || w.dims.length < 3) return undefined;
  return w.dims[1]! * n.getInt('group', 1);
}

const PASS_THROUGH = new Set(['Relu', 'Clip', 'Flatten', 'Reshape', 'Identity', 'Squeeze', 'Unsqueeze', 'BatchNormalization', 'Dropout']);

/**
 * Nodes known to be slow in int8 on CPU: Convs with one input channel, and nodes next to a MaxPool (onnxruntime
 * moves Q above MaxPool, which then runs as a slow uint8 op); in graph order.
 */
function slowSuspects(model: Model, quantized: ReadonlySet<string>): { node: string; why: string }[] {
  const out = new Map<string, string>();
  for (const n of model.graph.nodes) {
    if (n.opType === 'Conv' && convInputChannels(n) === 1 && n.getInt('group', 1) === 1) out.set(n.name, '1-channel Conv (slower in int8: measured ~6× at batch 32)');
    if (n.opType !== 'MaxPool') continue;
    out.set(n.name, 'MaxPool (runs as a slow uint8 op once Q moves above it)');
    // producers up through pass-through ops
    let p = n.inputs[0]?.producer;
    while (p && PASS_THROUGH.has(p.opType)) {
      out.set(p.name, `next to MaxPool ${n.name}`);
      p = p.inputs[0]?.producer;
    }
    if (p) out.set(p.name, `feeds MaxPool ${n.name}`);
    const down = [...(n.outputs[0]?.consumers ?? [])];
    while (down.length) {
      const c = down.shift()!;
      out.set(c.name, `reads MaxPool ${n.name}`);
      if (PASS_THROUGH.has(c.opType)) down.push(...(c.outputs[0]?.consumers ?? []));
    }
  }
  return [...out].filter(([name]) => name && quantized.has(name)).map(([node, why]) => ({ node, why }));
}

/** onnxruntime's per-node kernel times (µs, medians) of the float and the int8 model at the same batch. */
export interface NodeProfiles {
  float: Map<string, number>;
  int8: Map<string, number>;
}

async function profileBoth(float: Model, int8: Model, feeds: Feeds, o: { ep: ExecutionProvider; threads?: number }): Promise<NodeProfiles> {
  return { float: await profileNodes(float, feeds, { ...o, runs: 15 }), int8: await profileNodes(int8, feeds, { ...o, runs: 15 }) };
}

/**
 * Quantized nodes whose int8 kernel measured slower than their float kernel (onnxruntime's profiler, medians over
 * runs, both models at the same batch on the target provider), slowest excess first: the first suspects of the
 * greedy search. Nodes that take no time of their own in the float model (an Add fused into the Conv before it)
 * are left out: making them float would not bring the fusion back.
 */
function profiledSuspects(p: NodeProfiles, quantized: ReadonlySet<string>): { node: string; why: string }[] {
  const out: { node: string; why: string; excess: number }[] = [];
  for (const name of quantized) {
    const tf = p.float.get(name), tq = p.int8.get(name);
    if (!tf || tq === undefined || tq <= tf) continue;
    out.push({ node: name, why: `int8 kernel ${(tq / tf).toFixed(2)}× its float kernel (${(tq / 1000).toFixed(3)} vs ${(tf / 1000).toFixed(3)} ms, profiled)`, excess: tq - tf });
  }
  return out.sort((a, b) => b.excess - a.excess).map(({ node, why }) => ({ node, why }));
}

/**
 * Whether keeping `node` float can buy a measurable speed-up: not when the profiles show its int8 kernel slower by
 * less than 1% of the float model's kernel time (or faster). Such a node in a fixed candidate would only make the
 * file bigger when timing noise picks that candidate (a MobileNet-style model's 10-class Gemm, 0.5% of the time,
 * kept float took the file from 0.48× to 0.51×). Nodes the profiler did not see are kept.
 *
 * @example
 * ```ts
 * const p = { float: new Map([['conv1', 150], ['conv2', 9000], ['fc', 25]]), int8: new Map([['conv1', 800], ['conv2', 5000], ['fc', 30]]) };
 * worthFloat(p, 'conv1'); // true: 650 µs more in int8, 7% of the float model's 9175 µs
 * worthFloat(p, 'fc');    // false: 5 µs
 * ```
 */
export function worthFloat(p: NodeProfiles, node: string): boolean {
  const tf = p.float.get(node), tq = p.int8.get(node);
  if (tf === undefined || tq === undefined) return true;
  let total = 0;
  for (const t of p.float.values()) total += t;
  return tq - tf >= 0.01 * total;
}

/**
 * The placements the latency search tries besides all-int8 (first Conv float, last Gemm/MatMul float, both, and
 * every node known to be slow in int8 at once), and the slow suspects its greedy steps try one by one; limited to
 * `quantized` nodes when given (before calibration: every node).
 */
function latencyCandidates(model: Model, quantized: ReadonlySet<string> | undefined): { fixed: { name: string; nodes: { node: string; why: string }[] }[]; suspects: { node: string; why: string }[] } {
  const has = (n: Node | undefined): n is Node => !!n && (!quantized || quantized.has(n.name));
  const { firstConv, lastGemm } = endpoints(model);
  const fc = has(firstConv) ? { node: firstConv.name, why: 'first Conv; float was faster (timed)' } : undefined;
  const lg = has(lastGemm) ? { node: lastGemm.name, why: `last ${lastGemm.opType}; float was faster (timed)` } : undefined;
  const fixed: { name: string; nodes: { node: string; why: string }[] }[] = [];
  if (fc) fixed.push({ name: 'first-conv-float', nodes: [fc] });
  if (lg) fixed.push({ name: 'last-gemm-float', nodes: [lg] });
  if (fc && lg) fixed.push({ name: 'first-conv-last-gemm-float', nodes: [fc, lg] });
  const suspects = slowSuspects(model, quantized ?? new Set(model.graph.nodes.map((n) => n.name))).map((x) => ({ node: x.node, why: `${x.why}; float was faster (timed)` }));
  // every slow node at once (greedy single steps cannot compound under timing noise), unless that is everything
  const same = (a: string[]) => fixed.some((f) => f.nodes.length === a.length && a.every((n) => f.nodes.some((x) => x.node === n)));
  const total = quantized ? quantized.size : Infinity;
  if (suspects.length && suspects.length < total && !same(suspects.map((x) => x.node))) fixed.push({ name: 'slow-ops-float', nodes: suspects });
  return { fixed, suspects };
}

/**
 * What to calibrate so that any placement the searches try has its ranges: every float activation read or written
 * by a node the static quantizer has a handler for (not excluded, in `opTypes`), plus what `tensorsToCalibrate`
 * lists for the all-int8 placement. Forcing a node to float moves Q/DQ pairs only onto tensors next to quantizable
 * nodes, so this covers every subset; names absent from the quantizer's cleaned copy (a Conv output before a
 * folded BatchNormalization) cost a little calibration time and nothing else.
 */
function calibrationSuperset(model: Model, base: readonly string[], exclude: readonly string[], opTypes: readonly string[] | undefined): string[] {
  const out = new Set(base);
  const excluded = new Set(exclude);
  for (const n of model.graph.nodes) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    if (!Object.hasOwn(STATIC_HANDLERS, n.opType) || excluded.has(n.name) || (opTypes && !opTypes.includes(n.opType))) continue;
    for (const v of [...n.inputs, ...n.outputs]) {
      if (!v || v.initializer || (v.elemType !== undefined && v.elemType !== 'float32')) continue;
      if (v.producer && (v.producer.opType === 'Constant' || v.producer.opType === 'Shape')) continue;
      out.add(v.name);
    }
  }
  return [...out];
}

/** The value to read for a node's output in the quantized model: the DQ(Q(y)) that consumers see when there is one. */
function quantizedReadName(q: Model, name: string): string | undefined {
  const v = q.graph.lookup(name);
  if (!v) return undefined;
  for (const c of v.consumers) {
    if (c.opType !== 'QuantizeLinear') continue;
    const dq = c.outputs[0]?.consumers.find((x) => x.opType === 'DequantizeLinear');
    if (dq?.outputs[0]) return dq.outputs[0].name;
  }
  return v.elemType === undefined || DTYPES[v.elemType].float ? name : undefined;
}

/**
 * SQNR in dB of each node's (first) output in the quantized model against the float model, on the given feeds.
 * Nodes whose output cannot be found in both models (renamed, integer-typed) are left out.
 */
async function nodeSqnr(
  float: Model,
  quant: Model,
  nodes: readonly string[],
  samples: readonly Feeds[],
  o: { ep: ExecutionProvider; threads?: number },
  progress?: (done: number, total: number) => void,
): Promise<Map<string, number>> {
  // the quantizer keeps value names meaning what they meant (a folded BN's output name moves to its Conv), so the
  // quantized node's output name is looked up in the float model
  const byName = nodeByName(quant);
  const pairs: { node: string; f: string; q: string }[] = [];
  for (const name of nodes) {
    const out = byName.get(name)?.outputs[0];
    const f = out && float.graph.lookup(out.name);
    if (!out || !f || (f.elemType && !DTYPES[f.elemType].float)) continue;
    const q = quantizedReadName(quant, out.name);
    if (q) pairs.push({ node: name, f: out.name, q });
  }
  const result = new Map<string, number>();
  if (!pairs.length || !samples.length) return result;
  const fr = await Runner.create(float, { ep: o.ep, threads: o.threads, extraOutputs: [...new Set(pairs.map((p) => p.f))] });
  let qr: Runner | undefined;
  try {
    qr = await Runner.create(quant, { ep: o.ep, threads: o.threads, extraOutputs: [...new Set(pairs.map((p) => p.q))] });
    const signal = new Float64Array(pairs.length), noise = new Float64Array(pairs.length);
    const total = samples.reduce((s, f) => s + rowsOf(f), 0);
    let done = 0;
    for (const feeds of samples) {
      const a = await fr.run(feeds, [...new Set(pairs.map((p) => p.f))]);
      const b = await qr.run(feeds, [...new Set(pairs.map((p) => p.q))]);
      pairs.forEach((p, i) => {
        const x = a[p.f]!, y = b[p.q]!;
        if (x.data.length !== y.data.length || typeof x.data[0] === 'string') return;
        const xs = x.data as Float32Array, ys = y.data as Float32Array;
        let s = 0, n = 0;
        for (let j = 0; j < xs.length; j++) {
          const d = xs[j]! - ys[j]!;
          s += xs[j]! * xs[j]!;
          n += d * d;
        }
        signal[i]! += s;
        noise[i]! += n;
      });
      done += rowsOf(feeds);
      progress?.(done, total);
    }
    pairs.forEach((p, i) => result.set(p.node, noise[i] === 0 ? Infinity : 10 * Math.log10(signal[i]! / noise[i]!)));
  } finally {
    await fr.release();
    await qr?.release();
  }
  return result;
}


/**
 * Times models interleaved on the same feeds: each round runs every model (order rotated each round) enough
 * times to last a few milliseconds; returns the median ms per run.
 *
 * @example
 * ```ts
 * const ms = await timeInterleaved([{ name: 'float', model }, { name: 'int8', model: q }], feeds, { ep: 'cpu', rounds: 7 });
 * ```
 */
export const timeInterleaved: LatencyTimer = async (models, feeds, { ep, threads, rounds, clock = 'wall' }) => {
  // CPU time of the whole process (onnxruntime's threads included), in ms
  const now = clock === 'cpu' ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; } : () => performance.now();
  const runners: Runner[] = [];
  try {
    for (const m of models) runners.push(await Runner.create(m.model, { ep, threads }));
    // warm up, and size each round so a measurement lasts ≥ ~25 ms
    const reps: number[] = [];
    for (const r of runners) {
      await r.run(feeds);
      const t0 = performance.now();
      await r.run(feeds);
      const dt = performance.now() - t0;
      reps.push(Math.max(1, Math.min(500, Math.ceil(25 / Math.max(dt, 0.01)))));
    }
    const times: number[][] = models.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < runners.length; k++) {
        const i = (k + round) % runners.length;
        const t0 = now();
        for (let j = 0; j < reps[i]!; j++) await runners[i]!.run(feeds);
        times[i]!.push((now() - t0) / reps[i]!);
      }
    }
    return new Map(models.map((m, i) => [m.name, median(times[i]!)]));
  } finally {
    for (const r of runners) await r.release();
  }
};

// ---------------------------------------------------------------------------------------------------------------
// The engine

/** How the chosen mode builds a quantized model with some nodes forced to float. */
type Build = (forced: ReadonlyMap<string, KeptFloat>) => Promise<QuantizeOutput>;

interface Budget {
  started: number;
  seconds: number;
  left(): boolean;
}

function describeData(v: DataSource | undefined): unknown {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (isDataset(v)) return `Dataset (${v.size} samples)`;
  return 'AsyncIterable of feeds';
}

/** Forwards known keys of a quantizer's options (adapter between our schema and each quantizer's). */
function staticQuantizerOptions(o: ParsedOptions, activationType: ActivationType, reduceRange: boolean, exclude: string[], forced: ReadonlyMap<string, KeptFloat>) {
  const keepFloat = new Map<string, { reason: FallbackReason; detail?: string }>();
  for (const [name, k] of forced) keepFloat.set(name, { reason: k.reason, ...(k.detail ? { detail: k.detail } : {}) });
  return {
    perChannel: o.perChannel,
    activationType,
    weightType: o.weightType,
    symmetricActivations: o.symmetricActivations,
    reduceRange,
    ...(o.opTypes ? { opTypes: o.opTypes } : {}),
    exclude,
    keepFloat,
    overrides: o.overrides,
    format: o.format,
  };
}

/** Marks rows of forced nodes with our reasons, and recounts the quantized ops. */
function patchReport(report: QuantizeReport, forced: ReadonlyMap<string, KeptFloat>, sqnr: ReadonlyMap<string, number>): QuantizeReport {
  const nodes: NodeReport[] = report.nodes.map((r) => {
    const k = forced.get(r.node);
    const row: NodeReport = k ? { ...r, quantized: false, reason: k.reason, ...(k.detail ? { detail: k.detail } : {}) } : { ...r };
    const s = sqnr.get(r.node);
    if (s !== undefined) row.sqnrDb = s;
    return row;
  });
  const quantizedByOp: Record<string, number> = {};
  for (const r of nodes) if (r.quantized) quantizedByOp[r.opType] = (quantizedByOp[r.opType] ?? 0) + 1;
  return { ...report, nodes, quantizedByOp };
}

/**
 * The model static quantization works on: below opset 13 a copy raised to 13 (onnx/opset.ts), so that calibration
 * runs the same graph the quantizer names tensors in (a rewrite can add values, e.g. Softmax's old 2-D form spelled
 * out); the model as given when it is at 13 already or cannot be raised (the quantizer then says what it can do).
 */
function raisedForStatic(given: Model, notes: string[]): Model {
  if ((given.opset() ?? 1) >= 13) return given;
  const copy = modelFromProto(decodeModelProto(encodeModel(given)));
  return ensureOpset(copy, 13, notes) === undefined ? copy : given;
}

async function runQuantize(given: Model, mode: QuantizeMode, o: BaseOutput, ctx: QuantizeContext): Promise<QuantizePassResult> {
  const t0 = performance.now();
  const notes: string[] = [];
  // timing and accuracy compare against the model as given; calibration and the quantizer see the raised one
  const model = mode === 'static' ? raisedForStatic(given, notes) : given;
  const opts = { ...o, mode } as ParsedOptions;
  const cpu = detectCpu(ctx.cpuinfo, ctx.arch ?? process.arch);
  const act: Decision<ActivationType> = opts.activationType ? { value: opts.activationType, why: 'given' } : decideActivationType(opts.ep, cpu);
  const rr: Decision<boolean> = opts.reduceRange !== undefined ? { value: opts.reduceRange, why: 'given' } : decideReduceRange(opts.ep, cpu);
  const latency = opts.latency ?? (mode === 'weight-only' ? 'off' : 'auto');
  const bits = opts.bits ?? 8;
  const exclude = resolveExclude(model, opts.exclude);
  const inputs = modelInputs(model);
  const seconds = { total: 0, calibration: 0, quantization: 0, accuracy: 0, latency: 0 };
  const progress = (stage: QuantizeStage) => (done: number, total: number) => ctx.onProgress?.(stage, done, total);
  const signal = ctx.signal;

  // Samples kept for per-node SQNR and for timing feeds
  const batches = [...new Set(typeof opts.batch === 'number' ? [opts.batch] : opts.batch)];
  // samples are kept only when something uses them (timing feeds, per-node SQNR)
  const keepRows = latency === 'auto' || opts.maxAccuracyDrop !== undefined ? Math.max(...batches, 64) : 0;
  let kept: Feeds[] = [];

  // 1. calibrate (static) and make the build function of the mode
  let build: Build;
  let calibrationSamples: number | undefined;
  if (mode === 'static') {
    const tc = performance.now();
    let data: Dataset | AsyncIterable<Feeds>;
    if (typeof opts.calibration === 'string' || isDataset(opts.calibration)) {
      data = await openDataset(opts.calibration as string | Dataset, model, 'calibration');
      if (keepRows) kept = await takeSamples(data, inputs, Math.min(keepRows, opts.samples), 16);
    } else {
      const source = opts.calibration as AsyncIterable<Feeds>;
      data = keepRows ? recording(source, Math.min(keepRows, opts.samples), kept) : source;
    }
    // what to observe: the all-int8 placement's tensors, plus what the searches' placements need (each costs
    // calibration time: observed tensors are copied out of onnxruntime and binned)
    const base = staticQuantizerOptions(opts, act.value, rr.value, exclude, new Map());
    let tensors = tensorsToCalibrate(model, base);
    if (opts.maxAccuracyDrop !== undefined) {
      tensors = calibrationSuperset(model, tensors, exclude, opts.opTypes);
    } else if (latency === 'auto') {
      const need = new Set(tensors);
      const { fixed, suspects } = latencyCandidates(model, undefined);
      for (const set of [...fixed.map((f) => f.nodes.map((n) => n.node)), ...suspects.map((x) => [x.node])]) {
        for (const t of tensorsToCalibrate(model, { ...base, keepFloat: set })) need.add(t);
      }
      tensors = [...need];
    }
    // nothing gets a Q/DQ pair (no node with an integer kernel, or every range overridden): no calibration run
    const calibration = !tensors.length ? { ranges: new Map<string, TensorRange>(), samples: 0 } : await calibrate(model, data, {
      tensors,
      method: opts.method,
      percentile: opts.percentile,
      ...(opts.movingAverage !== undefined ? { movingAverage: opts.movingAverage } : {}),
      samples: opts.samples,
      batchSize: opts.calibrationBatchSize,
      ep: opts.ep,
      ...(opts.threads ? { threads: opts.threads } : {}),
      onProgress: progress('calibrate'),
      ...(signal ? { signal } : {}),
    });
    calibrationSamples = calibration.samples;
    const ranges: Map<string, TensorRange> = calibration.ranges;
    seconds.calibration = (performance.now() - tc) / 1000;
    build = async (forced) => quantizeStatic(model, ranges, staticQuantizerOptions(opts, act.value, rr.value, exclude, forced));
  } else if (mode === 'dynamic') {
    // the quantizer validates opTypes itself (it names the op types it supports)
    build = async (forced) =>
      quantizeDynamic(model, {
        perChannel: opts.perChannel,
        reduceRange: rr.value,
        weightType: opts.weightType,
        ...(opts.opTypes ? { opTypes: opts.opTypes as DynamicOptions['opTypes'] } : {}),
        exclude: [...exclude, ...forced.keys()],
      });
  } else {
    build = async (forced) =>
      quantizeWeightOnly(model, {
        bits,
        perChannel: opts.perChannel,
        ...(opts.blockSize ? { blockSize: opts.blockSize } : {}),
        ...(opts.opTypes ? { opTypes: opts.opTypes as WeightOnlyOptions['opTypes'] } : {}),
        exclude: [...exclude, ...forced.keys()],
      });
  }

  const tq = performance.now();
  let current = await build(new Map());
  seconds.quantization = (performance.now() - tq) / 1000;
  const quantizedNodes = current.report.nodes.filter((r) => r.quantized && r.node).map((r) => r.node);
  const budget: Budget = {
    started: performance.now(),
    seconds: opts.timeBudgetSeconds,
    left() {
      return (performance.now() - this.started) / 1000 < this.seconds;
    },
  };

  // evaluation data (also the source of samples when there is no calibration data)
  let evalDs: Dataset | undefined;
  if (opts.evalData !== undefined) evalDs = await openDataset(opts.evalData as string | Dataset, model, 'evalData');
  if (!kept.length && evalDs && keepRows) kept = await takeSamples(evalDs, inputs, keepRows, 16);
  // a model whose inputs fix the batch size is run at exactly that size
  const fixedBatch = inputs.map((i) => i.shape?.[0]).find((d): d is number => typeof d === 'number' && d > 0);
  const sqnrSamples = fixedBatch
    ? [cycleRows(kept, fixedBatch)].filter((f): f is Feeds => f !== undefined)
    : kept.flatMap((f) => {
        const out: Feeds[] = [];
        for (let s = 0; s < rowsOf(f); s += 16) out.push(sliceRows(f, s, Math.min(16, rowsOf(f) - s)));
        return out;
      });

  // 2. per-node SQNR on a few dozen samples, for the fallback order and the table (accuracy-aware mode only)
  let sqnr = new Map<string, number>();
  if (sqnrSamples.length && quantizedNodes.length && opts.maxAccuracyDrop !== undefined) {
    try {
      sqnr = await nodeSqnr(model, current.model, quantizedNodes, sqnrSamples.slice(0, 4), opts, progress('sqnr'));
    } catch (e) {
      if (!(e instanceof OnnxpressError)) throw e;
      notes.push(`per-node SQNR not measured: ${(e as Error).message}`);
    }
  }

  // 3. accuracy-aware fallback
  const forced = new Map<string, KeptFloat>();
  const opType = new Map(model.graph.nodes.map((n) => [n.name, n.opType]));
  let accuracy: AccuracyReport | undefined;
  let measureDrop: ((m: Model) => Promise<{ score: number; drop: number }>) | undefined;
  let goalMet = true;
  if (opts.maxAccuracyDrop !== undefined && evalDs) {
    const ta = performance.now();
    const tol = opts.maxAccuracyDrop;
    const eo = { ep: opts.ep, threads: opts.threads, batchSize: 128, ...(opts.evalSamples ? { limit: opts.evalSamples } : {}) };
    const ds = evalDs;
    let floatScore = 100;
    let metric: 'top1' | 'agreement';
    if (ds.hasLabels) {
      metric = 'top1';
      const r = await evaluate(given, ds, { ...eo, onProgress: progress('evaluate') });
      floatScore = r.top1 * 100;
      measureDrop = async (m) => {
        const q = await evaluate(m, ds, { ...eo, onProgress: progress('evaluate') });
        return { score: q.top1 * 100, drop: floatScore - q.top1 * 100 };
      };
    } else {
      metric = 'agreement';
      measureDrop = async (m) => {
        const c = await compareOutputs(m, given, ds, { ...eo, onProgress: progress('evaluate') });
        return { score: c.top1Agreement * 100, drop: 100 - c.top1Agreement * 100 };
      };
    }
    const samplesEval = Math.min(opts.evalSamples ?? ds.size, ds.size);
    const measure = measureDrop;
    const first = await measure(current.model);
    const trials: AccuracyTrial[] = [{ fellBack: [], score: first.score, dropPp: first.drop, meets: first.drop <= tol }];
    let best = { out: current, trial: trials[0]!, forced: new Map<string, KeptFloat>() };
    if (!trials[0]!.meets) {
      // lowest SQNR first; nodes without a measurement last, in graph order
      const order = [...quantizedNodes].sort((a, b) => (sqnr.get(a) ?? Infinity) - (sqnr.get(b) ?? Infinity));
      const prefix = (k: number) => {
        const m = new Map<string, KeptFloat>();
        for (const name of order.slice(0, k)) {
          const s = sqnr.get(name);
          m.set(name, {
            node: name,
            opType: opType.get(name) ?? '?',
            reason: 'accuracy',
            detail: `SQNR ${s === undefined ? 'not measured' : `${s.toFixed(1)} dB`}, among the lowest; the all-int8 model dropped ${first.drop.toFixed(2)} pp > ${tol} pp`,
          });
        }
        return m;
      };
      const tried = new Map<number, AccuracyTrial>();
      const trial = async (k: number): Promise<AccuracyTrial> => {
        signal?.throwIfAborted();
        const f = prefix(k);
        const out = await build(f);
        const r = await measure(out.model);
        const t: AccuracyTrial = { fellBack: [...f.keys()], score: r.score, dropPp: r.drop, meets: r.drop <= tol };
        trials.push(t);
        tried.set(k, t);
        if ((t.meets && (!best.trial.meets || k < best.trial.fellBack.length)) || (!best.trial.meets && !t.meets && t.dropPp < best.trial.dropPp)) {
          best = { out, trial: t, forced: f };
        }
        return t;
      };
      const canTry = () => trials.length - 1 < opts.maxTrials && budget.left();
      // 1. fall back 1, 2, 4, … of the lowest-SQNR nodes until the tolerance holds
      let fail = 0; // largest count known to miss
      let pass: number | undefined; // smallest count known to meet
      for (let k = 1; canTry(); k = Math.min(order.length, k * 2)) {
        if ((await trial(k)).meets) {
          pass = k;
          break;
        }
        fail = k;
        if (k === order.length) break;
      }
      // 2. then the smallest count between the last miss and the first hit (assuming more float is never worse)
      while (pass !== undefined && pass - fail > 1 && canTry()) {
        const mid = (fail + pass) >> 1;
        if ((await trial(mid)).meets) pass = mid;
        else fail = mid;
      }
      if (!best.trial.meets) {
        const why = fail >= order.length ? 'every quantized node was tried' : budget.left() ? `the trial budget (${opts.maxTrials}) ran out` : `the time budget (${opts.timeBudgetSeconds} s) ran out`;
        notes.push(`accuracy goal not met: best drop ${best.trial.dropPp.toFixed(2)} pp > ${tol} pp (${why}); returning the best model found`);
      }
    }
    current = best.out;
    for (const [k, v] of best.forced) forced.set(k, v);
    goalMet = best.trial.meets;
    accuracy = { metric, samples: samplesEval, float: floatScore, quantized: best.trial.score, dropPp: best.trial.dropPp, tolerancePp: tol, met: best.trial.meets, trials };
    seconds.accuracy = (performance.now() - ta) / 1000;
  }

  // 4. latency-aware placement
  let latencyReport: LatencyReport | undefined;
  let outcome: 'quantized' | 'float' = 'quantized';
  if (latency === 'auto') {
    const tl = performance.now();
    if (opts.latencyClock === 'cpu' && opts.threads !== 1) notes.push(`latencyClock 'cpu' with ${opts.threads ?? "onnxruntime's default"} threads adds up every thread's work: it measures cost, not latency (use threads: 1)`);
    const sizes = fixedBatch ? [fixedBatch] : batches;
    if (fixedBatch && batches.some((b) => b !== fixedBatch)) notes.push(`latency measured at batch ${fixedBatch}: the model's inputs fix it (batch ${batches.join(', ')} was asked for)`);
    const feedSets = sizes.map((rows) => ({ rows, feeds: cycleRows(kept, rows) ?? synthesizeFeeds(inputs, rows, opts.seed) }));
    const atBatch = `at batch ${sizes.join(' and ')}`;
    if (feedSets.some((f) => !f.feeds)) {
      notes.push('latency not measured: no samples to time with and the model inputs have unknown dims; rerun with calibration data or evalData');
    } else {
      const timer = ctx.timeLatency ?? timeInterleaved;
      const timing = { ep: opts.ep, threads: opts.threads, rounds: opts.latencyRounds, clock: opts.latencyClock };
      /**
       * Times float and the named placements interleaved at every batch size; a placement's ratio is its worst
       * over the batch sizes (ms and floatMs are those of the first).
       */
      const timeAll = async (names: string[]): Promise<Map<string, { ms: number; floatMs: number; ratio: number; byBatch: Record<string, number> }>> => {
        const out = new Map<string, { ms: number; floatMs: number; ratio: number; byBatch: Record<string, number> }>();
        const models = [{ name: 'float', model: given }, ...names.map((name) => ({ name, model: built.get(name)!.out.model }))];
        for (const { rows, feeds } of feedSets) {
          const m = await timer(models, feeds!, timing);
          const f = m.get('float')!;
          for (const name of names) {
            const r = m.get(name)! / f;
            const prev = out.get(name);
            if (!prev) out.set(name, { ms: m.get(name)!, floatMs: f, ratio: r, byBatch: { [rows]: r } });
            else out.set(name, { ...prev, ratio: Math.max(prev.ratio, r), byBatch: { ...prev.byBatch, [rows]: r } });
          }
        }
        return out;
      };
      const timingOf = (name: string, t: { ms: number; floatMs: number; ratio: number; byBatch: Record<string, number> }): PlacementTiming => ({
        name,
        floatNodes: [...built.get(name)!.extra.keys()],
        ms: t.ms,
        floatMs: t.floatMs,
        ratio: t.ratio,
        ...(sizes.length > 1 ? { byBatch: t.byBatch } : {}),
      });
      const quantizedNow = new Set(current.report.nodes.filter((r) => r.quantized && r.node).map((r) => r.node));
      const built = new Map<string, { out: QuantizeOutput; extra: Map<string, KeptFloat> }>([['int8', { out: current, extra: new Map() }]]);
      const placements: PlacementTiming[] = [];
      const speedFloat = (names: { node: string; why: string }[]) => {
        const m = new Map<string, KeptFloat>();
        for (const { node, why } of names) m.set(node, { node, opType: opType.get(node) ?? '?', reason: 'latency', detail: why });
        return m;
      };
      const withForced = (extra: ReadonlyMap<string, KeptFloat>) => new Map([...forced, ...extra]);

      // fixed candidates (only in static mode is placement a choice; other modes compare float vs int8)
      const { fixed, suspects: heuristic } = mode === 'static' ? latencyCandidates(model, quantizedNow) : { fixed: [], suspects: [] };
      // measured suspects first (not with injected timings: tests of the search stay deterministic)
      let allSuspects = heuristic;
      if (mode === 'static' && !ctx.timeLatency) {
        const profiles = await profileBoth(model, current.model, feedSets[0]!.feeds!, { ep: opts.ep, threads: opts.threads });
        // the heuristic candidates lose nodes that cannot matter to speed (and a candidate left empty, or equal to
        // another, goes); so do the profiled suspects
        const kept = fixed.map((f) => ({ ...f, nodes: f.nodes.filter((n) => worthFloat(profiles, n.node)) }));
        const key = (f: { nodes: { node: string }[] }) => f.nodes.map((n) => n.node).sort().join('\n');
        fixed.splice(0, fixed.length, ...kept.filter((f, i) => f.nodes.length && kept.findIndex((g) => key(g) === key(f)) === i));
        const profiled = profiledSuspects(profiles, quantizedNow).filter((x) => worthFloat(profiles, x.node));
        const seen = new Set(profiled.map((x) => x.node));
        allSuspects = [...profiled.map((x) => ({ ...x, why: `${x.why}; float was faster (timed)` })), ...heuristic.filter((x) => !seen.has(x.node))];
        const same = (a: string[]) => fixed.some((f) => f.nodes.length === a.length && a.every((n) => f.nodes.some((x) => x.node === n)));
        if (profiled.length > 1 && profiled.length < quantizedNow.size && !same(profiled.map((x) => x.node))) {
          fixed.push({ name: 'profiled-slow-float', nodes: profiled.map((x) => ({ ...x, why: `${x.why}; float was faster (timed)` })) });
        }
      }
      const tryBuild = async (name: string, extra: Map<string, KeptFloat>): Promise<boolean> => {
        try {
          built.set(name, { out: await build(withForced(extra)), extra });
          return true;
        } catch (e) {
          // a placement whose tensors were not calibrated (see calibrationSuperset) is skipped, not fatal
          if (!(e instanceof OnnxpressError) || !/No calibrated range/.test((e as Error).message)) throw e;
          notes.push(`latency candidate ${name} skipped: ${(e as Error).message}`);
          return false;
        }
      };
      for (const f of fixed) await tryBuild(f.name, speedFloat(f.nodes));
      ctx.onProgress?.('latency', 0, 1);
      const first = await timeAll([...built.keys()]);
      for (const [name, t] of first) placements.push(timingOf(name, t));

      // greedy single-node fallbacks of nodes known to be slow in int8, from the fastest quantized placement
      if (mode === 'static') {
        let cur = placements.reduce((a, b) => (b.ratio < a.ratio ? b : a));
        const suspects = allSuspects.filter((s) => !built.get(cur.name)!.extra.has(s.node));
        let steps = 0;
        for (const s of suspects) {
          if (steps >= opts.maxTrials || !budget.left()) {
            notes.push(`latency search stopped after ${steps} greedy steps (${steps >= opts.maxTrials ? 'trial' : 'time'} budget)`);
            break;
          }
          signal?.throwIfAborted();
          steps++;
          const curExtra = built.get(cur.name)!.extra;
          if (curExtra.has(s.node)) continue;
          const extra = new Map([...curExtra, ...speedFloat([s])]);
          // the same set as a placement already timed (MobileNet's first Conv is also its 1-channel Conv)
          if ([...built.values()].some((b) => b.extra.size === extra.size && [...extra.keys()].every((k) => b.extra.has(k)))) continue;
          const name = `greedy-${steps}:+${s.node}`;
          if (!(await tryBuild(name, extra))) continue;
          const m = await timeAll([cur.name, name]);
          const p = timingOf(name, m.get(name)!);
          placements.push(p);
          // re-measured alongside: the current placement's ratio from this round is as good as its first one
          if (p.ratio < m.get(cur.name)!.ratio * (1 - LATENCY_MARGIN)) cur = p;
          ctx.onProgress?.('latency', steps, suspects.length);
        }
      }

      const chosen = await decidePlacement(placements, {
        ...(measureDrop && opts.maxAccuracyDrop !== undefined
          ? {
              accuracyOk: async (name) => {
                const r = await measureDrop!(built.get(name)!.out.model);
                // when the goal could not be met, a placement no worse than the best found is acceptable
                const ok = r.drop <= opts.maxAccuracyDrop! || (!goalMet && r.drop <= (accuracy?.dropPp ?? Infinity));
                if (ok && accuracy) accuracy = { ...accuracy, quantized: r.score, dropPp: r.drop, met: r.drop <= opts.maxAccuracyDrop! };
                return ok;
              },
            }
          : {}),
        retime: async (name) => {
          const { byBatch, ...t } = (await timeAll([name])).get(name)!;
          return sizes.length > 1 ? { ...t, byBatch } : t;
        },
      });
      let why: string;
      const bestQ = placements.reduce((a, b) => (b.ratio < a.ratio ? b : a));
      if (chosen === 'float') {
        outcome = 'float';
        why = `no int8 placement was faster than float on ${opts.ep} ${atBatch} (best: ${bestQ.name} at ${bestQ.ratio.toFixed(2)}× float); returning the float model unchanged`;
        notes.push(why);
      } else {
        const p = placements.find((x) => x.name === chosen)!;
        why = `${chosen} is the fastest placement: ${p.ratio.toFixed(2)}× float on ${opts.ep} ${atBatch}${sizes.length > 1 ? ' (worst of the batch sizes)' : ''}`;
        const b = built.get(chosen)!;
        current = b.out;
        for (const [k, v] of b.extra) forced.set(k, v);
      }
      const ratio = chosen === 'float' ? 1 : placements.find((x) => x.name === chosen)!.ratio;
      latencyReport = { ep: opts.ep, batches: sizes, rounds: opts.latencyRounds, ...(opts.threads ? { threads: opts.threads } : {}), placements, chosen, ratio, why };
    }
    seconds.latency = (performance.now() - tl) / 1000;
  }

  // 5. report and recipe
  const base = patchReport(current.report, outcome === 'float' ? new Map() : forced, sqnr);
  const keptFloat: KeptFloat[] = base.nodes
    .filter((r) => !r.quantized && r.reason)
    .map((r) => ({ node: r.node, opType: r.opType, reason: r.reason!, ...(r.detail ? { detail: r.detail } : {}) }));
  const resolved: Record<string, unknown> = {
    mode,
    ...(mode === 'static'
      ? {
          calibration: describeData(opts.calibration),
          samples: opts.samples,
          samplesSeen: calibrationSamples,
          method: opts.method,
          ...(opts.method === 'percentile' ? { percentile: opts.percentile } : {}),
          ...(opts.movingAverage !== undefined ? { movingAverage: opts.movingAverage } : {}),
          calibrationBatchSize: opts.calibrationBatchSize,
          activationType: act,
          symmetricActivations: opts.symmetricActivations,
          ...(Object.keys(opts.overrides).length ? { overrides: opts.overrides } : {}),
          format: opts.format,
        }
      : {}),
    ...(mode !== 'weight-only' ? { perChannel: opts.perChannel, reduceRange: rr, weightType: opts.weightType } : { bits, ...(opts.blockSize ? { blockSize: opts.blockSize } : {}) }),
    cpu,
    exclude: opts.exclude,
    excludedNodes: exclude,
    opTypes: opts.opTypes ?? 'all with an integer kernel',
    ...(opts.maxAccuracyDrop !== undefined ? { maxAccuracyDrop: opts.maxAccuracyDrop, evalData: describeData(opts.evalData), evalSamples: opts.evalSamples ?? 'all' } : {}),
    latency,
    ep: opts.ep,
    threads: opts.threads ?? 'onnxruntime default',
    batch: opts.batch,
    latencyRounds: opts.latencyRounds,
    latencyClock: opts.latencyClock,
    maxTrials: opts.maxTrials,
    timeBudgetSeconds: opts.timeBudgetSeconds,
    seed: opts.seed,
  };
  const recipe = {
    tool: 'onnxpress',
    ...resolved,
    result: {
      placement: latencyReport?.chosen ?? 'int8',
      floatForAccuracy: keptFloat.filter((k) => k.reason === 'accuracy').map((k) => k.node),
      floatForSpeed: keptFloat.filter((k) => k.reason === 'latency').map((k) => k.node),
      ...(accuracy ? { accuracy: { metric: accuracy.metric, float: accuracy.float, quantized: accuracy.quantized, dropPp: accuracy.dropPp } } : {}),
      ...(latencyReport ? { latencyRatio: latencyReport.ratio, latencyBatches: latencyReport.batches } : {}),
    },
  };
  let outModel: Model;
  if (outcome === 'float') {
    outModel = given;
  } else {
    outModel = current.model;
    outModel.metadata.set(QUANTIZE_METADATA_KEY, JSON.stringify(recipe));
  }
  seconds.total = (performance.now() - t0) / 1000;
  const report: QuantizeResultReport = {
    ...base,
    mode,
    notes: [...base.notes, ...notes],
    outcome,
    goalMet,
    resolved,
    keptFloat: outcome === 'float' ? [] : keptFloat,
    ...(accuracy ? { accuracy } : {}),
    ...(latencyReport ? { latency: latencyReport } : {}),
    seconds,
  };
  return { model: outModel, modified: outcome !== 'float', notes: report.notes, report };
}

// ---------------------------------------------------------------------------------------------------------------
// Passes and the function

function makePass(name: string, mode: QuantizeMode, schema: ReturnType<typeof modeSchema>, description: string): Pass<ReturnType<typeof modeSchema>> {
  return {
    name,
    description,
    inPlace: false,
    options: schema,
    run: (model, options, ctx) => runQuantize(model, mode, options as BaseOutput, ctx as QuantizeContext),
  };
}

/**
 * `quantize.static`: calibrated int8 activations and weights (QDQ or QOperator), with accuracy-aware fallback and
 * latency-aware placement.
 *
 * @example
 * ```ts
 * const r = (await runPass(quantizeStaticPass, model, { calibration: 'calib.json' })) as QuantizePassResult;
 * ```
 */
export const quantizeStaticPass = makePass('quantize.static', 'static', quantizeStaticOptions, 'Static int8 quantization: calibrate, place QDQ, fall back what costs accuracy or speed');
/**
 * `quantize.dynamic`: int8 weights, activations quantized at run time (no calibration data).
 *
 * @example
 * ```ts
 * await runPass(quantizeDynamicPass, model, { perChannel: true });
 * ```
 */
export const quantizeDynamicPass = makePass('quantize.dynamic', 'dynamic', quantizeDynamicOptions, 'Dynamic int8 quantization: int8 weights, activation ranges computed at run time');
/**
 * `quantize.weightOnly`: int8 or 4-bit weights dequantized to float at run time (smaller files, float compute).
 *
 * @example
 * ```ts
 * await runPass(quantizeWeightOnlyPass, model, { bits: 4 });
 * ```
 */
export const quantizeWeightOnlyPass = makePass('quantize.weightOnly', 'weight-only', quantizeWeightOnlyOptions, 'Weight-only quantization: int8 or blockwise 4-bit weights, float compute');

/**
 * The quantization passes, in the order docs list them.
 *
 * @example
 * ```ts
 * for (const p of QUANTIZE_PASSES) console.log(p.name, optionsJsonSchema(p));
 * ```
 */
export const QUANTIZE_PASSES: readonly Pass[] = [quantizeStaticPass, quantizeDynamicPass, quantizeWeightOnlyPass] as Pass[];

const PASS_BY_MODE: Record<QuantizeMode, Pass<ReturnType<typeof modeSchema>>> = {
  static: quantizeStaticPass,
  dynamic: quantizeDynamicPass,
  'weight-only': quantizeWeightOnlyPass,
};

/**
 * Quantizes a model (a new model is returned; the one given is not changed). Static mode calibrates on
 * `calibration`, falls nodes back to float until `maxAccuracyDrop` holds on `evalData`, and (with `latency: 'auto'`)
 * keeps the fastest placement, returning the float model itself when nothing beats it.
 *
 * @example
 * ```ts
 * import { loadModel, quantize, saveModel } from 'onnxpress';
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * const { model: q, report } = await quantize(model, {
 *   calibration: 'fixtures/fmnist-test-256/cnn.json', maxAccuracyDrop: 0.3, evalData: 'fixtures/fmnist-test-256/cnn.json',
 * });
 * report.outcome;            // 'quantized' or 'float'
 * report.keptFloat;          // [{ node: '/conv1/Conv', reason: 'latency', detail: '1-channel Conv …' }]
 * await saveModel(q, 'cnn.int8.onnx');
 * ```
 */
export async function quantize(model: Model, options: QuantizeOptions, ctx: QuantizeContext = {}): Promise<{ model: Model; report: QuantizeResultReport }> {
  const { mode, ...rest } = parseOptions(quantizeOptions, options, 'quantize');
  const r = (await runPass(PASS_BY_MODE[mode], model, rest as Record<string, unknown>, ctx)) as QuantizePassResult;
  return { model: r.model, report: r.report };
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

const REASON_TEXT: Record<FallbackReason, string> = {
  'no-integer-kernel': 'no integer kernel',
  excluded: 'excluded',
  accuracy: 'accuracy',
  latency: 'speed',
  'not-constant-weight': 'weights computed at run time',
  'unsupported-shape': 'unsupported shape',
};

/**
 * A human-readable summary of a quantization report.
 *
 * @example
 * ```ts
 * console.log(formatQuantizeReport((await quantize(model, opts)).report));
 * ```
 */
export function formatQuantizeReport(r: QuantizeResultReport): string {
  const lines: string[] = [];
  const ops = Object.entries(r.quantizedByOp)
    .sort((a, b) => b[1] - a[1])
    .map(([op, n]) => `${op} ×${n}`)
    .join(', ');
  lines.push(r.outcome === 'float' ? 'Result: the float model, unchanged (no int8 placement was faster)' : `Quantized (${r.mode}): ${ops || 'no nodes'}`);
  const dec = (k: string) => r.resolved[k] as Decision<unknown> | undefined;
  const facts: string[][] = [];
  if (dec('activationType')) facts.push(['Activations', `${dec('activationType')!.value}`, dec('activationType')!.why]);
  if (dec('reduceRange')) facts.push(['Reduce range', `${dec('reduceRange')!.value}`, dec('reduceRange')!.why]);
  if (r.resolved.method) facts.push(['Calibration', `${r.resolved.method}${r.resolved.percentile ? ` ${r.resolved.percentile}` : ''}`, `${r.resolved.samplesSeen ?? '?'} samples`]);
  if (facts.length) lines.push('', formatTable(facts));
  if (r.accuracy) {
    const a = r.accuracy;
    lines.push(
      '',
      `Accuracy (${a.metric === 'top1' ? 'top-1' : 'top-1 agreement with float'}, ${a.samples} samples): float ${a.float.toFixed(2)}%, returned ${a.quantized.toFixed(2)}%, drop ${a.dropPp.toFixed(2)} pp (tolerance ${a.tolerancePp} pp): ${a.met ? 'met' : 'NOT met'}`,
    );
    if (a.trials.length > 1) lines.push(`  ${a.trials.length} trials; fell back ${a.trials[a.trials.length - 1]!.fellBack.length} node(s) in the last`);
  }
  if (r.latency) {
    const l = r.latency;
    lines.push('', `Latency (${l.ep}, batch ${l.batches.join(' and ')}, ${l.rounds} interleaved rounds, medians${l.batches.length > 1 ? '; ratio = worst over the batch sizes' : ''}):`);
    const several = l.batches.length > 1;
    const rows = [[`placement`, `ms (batch ${l.batches[0]})`, 'vs float', ...(several ? ['per batch'] : []), 'accuracy']];
    rows.push(['float', (l.placements[0]?.floatMs ?? 0).toFixed(3), '1.00×', ...(several ? [''] : []), '']);
    for (const p of l.placements) {
      const tags = [p.name === l.chosen ? 'chosen' : '', p.confirmed ? 're-timed' : ''].filter(Boolean).join(', ');
      const per = several && p.byBatch ? Object.entries(p.byBatch).map(([b, r]) => `b${b} ${r.toFixed(2)}×`).join(', ') : '';
      rows.push([`${p.name}${tags ? ` (${tags})` : ''}`, p.ms.toFixed(3), `${p.ratio.toFixed(2)}×`, ...(several ? [per] : []), p.accuracyOk === undefined ? '' : p.accuracyOk ? 'ok' : 'too low']);
    }
    lines.push(formatTable(rows, { indent: '  ', right: [1, 2] }), `  ${l.why}`);
  }
  const kept = r.keptFloat;
  if (kept.length) {
    lines.push('', `Left in float (${kept.length}):`);
    lines.push(formatTable(kept.map((k) => [k.node, k.opType, REASON_TEXT[k.reason] ?? k.reason, k.detail ?? '']), { indent: '  ' }));
  }
  const measured = r.nodes.filter((n) => n.sqnrDb !== undefined);
  if (measured.length) {
    lines.push('', 'Per node (SQNR of its output in the all-int8 model against float, on calibration samples):');
    const rows = [['node', 'op', 'SQNR dB', 'int8']];
    for (const n of measured) rows.push([n.node, n.opType, Number.isFinite(n.sqnrDb!) ? n.sqnrDb!.toFixed(1) : 'exact', n.quantized ? 'yes' : `float (${REASON_TEXT[n.reason!] ?? n.reason})`]);
    lines.push(formatTable(rows, { indent: '  ', right: [2] }));
  }
  if (r.notes.length) lines.push('', 'Notes:', ...r.notes.map((n) => `  - ${n}`));
  return lines.join('\n');
}
