/**
 * Shared types of the quantization package: what calibration hands to the quantizers, and what every
 * quantizer reports. Written first so that calibration, the static/dynamic/weight-only quantizers and the
 * orchestration (`quantize()`, accuracy- and latency-aware search, CLI) agree.
 *
 * Module map:
 * - `calibrate/`  streaming observers (minmax, moving-average minmax, percentile, entropy, mse) and `calibrate()`
 * - `static.ts` + `ops/<Op>.ts` + `ops/table.ts`  QDQ placement, one handler per op type, explicit fallback;
 *   `qoperator.ts` converts QDQ groups to QLinearConv / QLinearMatMul
 * - `dynamic.ts`  DynamicQuantizeLinear + MatMulInteger / ConvInteger
 * - `weightOnly.ts`  int8 DequantizeLinear weights, and MatMulNBits 4-bit blockwise
 * - `quantize.ts`  the `quantize.*` passes, `quantize(model, options)`, accuracy-aware and latency-aware search
 */
import type { Model } from '../onnx/ir.js';
import type { RunTensor } from '../onnx/runner.js';

/** A calibrated value range of one tensor (float, before any symmetric widening). */
export interface TensorRange {
  min: number;
  max: number;
}

/** Calibration methods. */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy' | 'mse';

/** Model feeds for one calibration batch, keyed by model input name. */
export type Feeds = Record<string, RunTensor>;

/** What calibration produces: a range per observed tensor (by value name). */
export interface CalibrationResult {
  method: CalibrationMethod;
  /** Number of samples (batch rows) seen. */
  samples: number;
  ranges: Map<string, TensorRange>;
}

/** Activation element types. */
export type ActivationType = 'uint8' | 'int8';
/** Weight element types for 8-bit modes. */
export type WeightType = 'int8' | 'uint8';

/** Why a node stayed in float. */
export type FallbackReason =
  | 'no-integer-kernel' // the op has no quantized kernel in onnxruntime: left in float by the fallback handler
  | 'excluded' // the user excluded it by name, pattern or op type
  | 'accuracy' // the accuracy-aware search fell it back
  | 'latency' // the latency-aware search found float faster
  | 'not-constant-weight' // weights are computed at run time
  | 'unsupported-shape'; // e.g. a Conv with a 1-channel input kept float for speed, or a rank the kernel lacks

/** One row of the per-node table in the quantization report. */
export interface NodeReport {
  node: string;
  opType: string;
  /** true when the node runs with integer (QDQ / QOperator / integer) kernels. */
  quantized: boolean;
  reason?: FallbackReason;
  /** Human-readable detail for the reason ("MaxPool runs slower in uint8 on x86: 520 µs vs 34 µs"). */
  detail?: string;
  /** SQNR in dB of this node's output in the quantized model against the float model, when measured. */
  sqnrDb?: number;
}

/** What a quantizer returns besides the model. */
export interface QuantizeReport {
  mode: 'static' | 'dynamic' | 'weight-only';
  nodes: NodeReport[];
  /** Quantized node count per op type. */
  quantizedByOp: Record<string, number>;
  notes: string[];
}

/** A quantizer's result. */
export interface QuantizeOutput {
  model: Model;
  report: QuantizeReport;
}
