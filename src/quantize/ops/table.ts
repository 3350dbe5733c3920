/**
 * The static quantizer's op table: one handler per ONNX op type (`ops/<Op>.ts`, named verbatim), listed here
 * explicitly, and the fallback (`fallback.ts`) for every other op: its inputs are dequantized and it runs in float.
 *
 * The table holds exactly the ops onnxruntime's CPU provider turns into integer kernels when they sit in a QDQ
 * group (its QDQ selector/action transformer, checked against the optimized graphs in the tests):
 *
 * | op | what onnxruntime makes of it | output params |
 * |---|---|---|
 * | Conv | QLinearConv (Relu / Clip after it fused when the output zero point makes them redundant) | own |
 * | Gemm | QGemm (float output when no Q follows) | own, optional |
 * | MatMul | QLinearMatMul, or MatMulIntegerToFloat when no Q follows | own, optional |
 * | Add, Mul | QLinearAdd, QLinearMul | own |
 * | AveragePool, GlobalAveragePool, LeakyRelu | QLinearAveragePool, QLinearGlobalAveragePool, QLinearLeakyRelu | own |
 * | Softmax, Sigmoid | QLinearSoftmax, QLinearSigmoid | fixed [0, 1] |
 * | Concat | QLinearConcat | shared by all inputs and the output |
 * | MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze, Resize, Gather, Slice, Expand, Tile, Split | the op itself on uint8 (Q/DQ dropped) | shared with the input |
 * | Relu, Clip | removed when they follow one of the ops above and the Q after them makes them redundant | that op's |
 *
 * ConvTranspose is left to the fallback: onnxruntime 1.30 has no QDQ fusion for it on the CPU, so quantizing it
 * would only add DequantizeLinear work in front of a float kernel.
 */
import type { Attr, Node, Value } from '../../onnx/ir.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { QParams, QuantType } from '../qdq.js';
import type { FallbackReason, TensorRange } from '../types.js';
import { Add } from './Add.js';
import { AveragePool } from './AveragePool.js';
import { Clip } from './Clip.js';
import { Concat } from './Concat.js';
import { Conv } from './Conv.js';
import { Expand } from './Expand.js';
import { Flatten } from './Flatten.js';
import { Gather } from './Gather.js';
import { Gemm } from './Gemm.js';
import { GlobalAveragePool } from './GlobalAveragePool.js';
import { LeakyRelu } from './LeakyRelu.js';
import { MatMul } from './MatMul.js';
import { MaxPool } from './MaxPool.js';
import { Mul } from './Mul.js';
import { Relu } from './Relu.js';
import { Reshape } from './Reshape.js';
import { Resize } from './Resize.js';
import { Sigmoid } from './Sigmoid.js';
import { Slice } from './Slice.js';
import { Softmax } from './Softmax.js';
import { Split } from './Split.js';
import { Squeeze } from './Squeeze.js';
import { Tile } from './Tile.js';
import { Transpose } from './Transpose.js';
import { Unsqueeze } from './Unsqueeze.js';
import { fallback } from './fallback.js';

/** What a handler sees of the quantizer while it plans one node. */
export interface PlanContext {
  readonly node: Node;
  /** The model's default-domain opset. */
  readonly opset: number;
  readonly activationType: QuantType;
  readonly perChannel: boolean;
  /** Whether `v` gets a Q/DQ pair, as decided so far (nodes are planned in topological order). */
  isQuantized(v: Value | null | undefined): boolean;
  /** Whether `v` is a float32 tensor computed at run time (or a graph input): what activations are. */
  isFloatActivation(v: Value | null | undefined): boolean;
  /** The data of `v` when it is a constant float32 tensor (initializer or Constant node). */
  floatConstant(v: Value | null | undefined): Tensor | undefined;
  /**
   * The plan of an op that only moves or selects values: when the inputs listed are float32 activations and (any
   * of them, for Concat) already quantized, every output shares their scale and zero point; otherwise it stays float.
   */
  shareParams(inputs: number[]): OpPlan;
  /** A plan that leaves the node in float. */
  float(reason: FallbackReason, detail: string): FloatPlan;
}

/** The node stays float: quantized inputs are dequantized in front of it. */
export interface FloatPlan {
  quantize: false;
  reason: FallbackReason;
  detail: string;
}

/** A constant input stored as integers behind a DequantizeLinear. */
export interface WeightPlan {
  input: number;
  /**
   * `weight`: int8 symmetric (or the weight type), per channel along `axis` when per-channel is on;
   * `activation`: the activation type, per tensor, asymmetric (constants of Add / Mul, which need equal types).
   */
  kind: 'weight' | 'activation';
  axis?: number;
  /** A factor folded into the weight first (Gemm's alpha). */
  multiplier?: number;
}

/** An int32 bias whose scale is the product of an activation input's scale and a weight input's scales. */
export interface BiasPlan {
  input: number;
  activation: number;
  weight: number;
  /** Output channels (the bias is broadcast to [channels] when it holds one value). */
  channels: number;
  /** A factor folded into the bias first (Gemm's beta). */
  multiplier?: number;
}

/** How the outputs of a quantized node are quantized. */
export type OutputPlan =
  /** Own calibrated params; `required`: the integer kernel needs a Q after it (else it may output float). */
  | { kind: 'own'; required: boolean; absorbsActivation: boolean }
  /** Params known without calibration (Softmax, Sigmoid). */
  | { kind: 'fixed'; params: (type: QuantType) => QParams; range: TensorRange }
  /** Every output shares the params of these inputs. */
  | { kind: 'shared'; inputs: number[] };

/** The node runs with an integer kernel. */
export interface QuantizePlan {
  quantize: true;
  /** Inputs that get a Q/DQ pair. */
  activations: number[];
  weights?: WeightPlan[];
  bias?: BiasPlan;
  output: OutputPlan;
  /** Attributes set once the weights are written (Gemm: alpha and beta folded into B and C). */
  setAttributes?: Record<string, Attr>;
}

export type OpPlan = QuantizePlan | FloatPlan;

/**
 * A per-op quantizer.
 *
 * @example
 * ```ts
 * export const Reshape: OpHandler = { opType: 'Reshape', plan: (ctx) => ctx.shareParams([0]) };
 * ```
 */
export interface OpHandler {
  readonly opType: string;
  /** The lowest default-domain opset at which onnxruntime has the integer kernel; below it the op stays float. */
  readonly sinceOpset?: number;
  plan(ctx: PlanContext): OpPlan;
  /**
   * Relu and Clip only: whether the node can be fused into the quantized op before it (the Q after it makes it
   * redundant), with the bounds it clips to; or why not.
   */
  fusible?(ctx: PlanContext): { min: number; max: number } | string;
}

/**
 * The handlers, by op type (default ONNX domain). Every op not listed goes to `fallback`.
 *
 * @example
 * ```ts
 * Object.keys(STATIC_HANDLERS); // ['Add', 'AveragePool', 'Clip', …]
 * ```
 */
export const STATIC_HANDLERS: Readonly<Record<string, OpHandler>> = {
  Add,
  AveragePool,
  Clip,
  Concat,
  Conv,
  Expand,
  Flatten,
  Gather,
  Gemm,
  GlobalAveragePool,
  LeakyRelu,
  MatMul,
  MaxPool,
  Mul,
  Relu,
  Reshape,
  Resize,
  Sigmoid,
  Slice,
  Softmax,
  Split,
  Squeeze,
  Tile,
  Transpose,
  Unsqueeze,
};

/**
 * The handler for a node's op type: the table's, or the fallback for other ops and other domains.
 *
 * @example
 * ```ts
 * staticHandlerFor('Conv', '').opType; // 'Conv'
 * staticHandlerFor('Erf', '') === fallback; // true
 * ```
 */
export function staticHandlerFor(opType: string, domain: string): OpHandler {
  if (domain !== '' && domain !== 'ai.onnx') return fallback;
  return Object.hasOwn(STATIC_HANDLERS, opType) ? STATIC_HANDLERS[opType]! : fallback;
}
