/**
 * The gradient rules: one per ONNX op type (`grad/<Op>.ts`, named verbatim), listed here explicitly. There is no
 * fallback: a node on the path from a trainable parameter to the logits whose op has no rule stops
 * `buildTrainingGraph` with one GraphError naming every such node (see `graph.ts`).
 *
 * A rule's backward emits standard ONNX ops (opset ≥ 17 forms) through the builder's `Emitter` and returns one
 * gradient per input (null where none flows). Which formulations are used, and why, is written in each rule; the
 * measured reasons are in `shared/notes/onnx-training-probe.md`.
 *
 * | op | backward | notes |
 * |---|---|---|
 * | Conv | dX = ConvTranspose(dY, W); dW = im2col (grouped Conv, one-hot kernels) + batched MatMul, or for large layers and groups a Conv of Xᵀ with dYᵀ as the kernel; dB = ΣdY | groups, strides, pads, dilations, auto_pad |
 * | ConvTranspose | dX = Conv(dY, W); dW as Conv's with X and dY swapped | no `output_shape`, no SAME auto_pad |
 * | Gemm, MatMul | Gemm/MatMul with the other operand transposed; broadcast batch dims summed | |
 * | BatchNormalization | closed form; training mode (batch statistics, running statistics updated as PyTorch does) or frozen | |
 * | Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish | Where / Mul on the saved input or output | |
 * | Add, Sub, Mul, Div | broadcast gradients summed back to each input's shape (ReduceSum + Reshape) | |
 * | Concat, Split | Split, Concat | |
 * | Slice, Pad | Pad (steps 1, constant bounds), else ScatterElements of flat indices; Pad with negated pads | Pad: constant mode |
 * | MaxPool | ties split evenly (non-overlapping windows) or Indices + ScatterElements(add) | `storage_order` 0 |
 * | AveragePool, GlobalAveragePool | depthwise ConvTranspose with a ones kernel; Mul by 1/(H·W) | no size-changing `ceil_mode` |
 * | Flatten, Reshape, Squeeze, Unsqueeze, Transpose | Reshape to the input's shape; inverse Transpose | |
 * | Softmax, LogSoftmax, ReduceMean | closed forms | |
 * | Dropout, Identity | passthrough | Dropout is treated as in inference (no mask) |
 */
import type { Node, Value } from '../../onnx/ir.js';
import type { Emitter } from '../graph.js';
import { Add } from './Add.js';
import { AveragePool } from './AveragePool.js';
import { BatchNormalization } from './BatchNormalization.js';
import { Clip } from './Clip.js';
import { Concat } from './Concat.js';
import { Conv } from './Conv.js';
import { ConvTranspose } from './ConvTranspose.js';
import { Div } from './Div.js';
import { Dropout } from './Dropout.js';
import { Flatten } from './Flatten.js';
import { Gemm } from './Gemm.js';
import { GlobalAveragePool } from './GlobalAveragePool.js';
import { HardSigmoid } from './HardSigmoid.js';
import { HardSwish } from './HardSwish.js';
import { Identity } from './Identity.js';
import { LeakyRelu } from './LeakyRelu.js';
import { LogSoftmax } from './LogSoftmax.js';
import { MatMul } from './MatMul.js';
import { MaxPool } from './MaxPool.js';
import { Mul } from './Mul.js';
import { Pad } from './Pad.js';
import { ReduceMean } from './ReduceMean.js';
import { Relu } from './Relu.js';
import { Reshape } from './Reshape.js';
import { Sigmoid } from './Sigmoid.js';
import { Slice } from './Slice.js';
import { Softmax } from './Softmax.js';
import { Split } from './Split.js';
import { Squeeze } from './Squeeze.js';
import { Sub } from './Sub.js';
import { Tanh } from './Tanh.js';
import { Transpose } from './Transpose.js';
import { Unsqueeze } from './Unsqueeze.js';

/** What a rule's forward hook sees: it may rewrite its node for training before any backward is built. */
export interface ForwardContext {
  readonly node: Node;
  readonly em: Emitter;
  /** How BatchNormalization runs in the step graph (`buildTrainingGraph`'s `batchNorm` option). */
  readonly batchNorm: 'train' | 'frozen';
  /** Whether a gradient will flow back through this node (hooks that only serve the backward can do nothing otherwise). */
  readonly needsBackward: boolean;
  /** Declares a buffer: `initializer` becomes a step-graph input of the same name and `update` its new value, an output. */
  buffer(initializer: Value, update: Value): void;
}

/** What a forward hook returns: a node that replaced the original (same inputs, outputs taking its place), and values the backward needs. */
export interface ForwardResult {
  node?: Node;
  saved?: Record<string, Value>;
}

/** What a rule's backward sees of one forward node. */
export interface GradContext {
  /** The forward node (in the step graph; after its forward hook, if it has one). */
  readonly node: Node;
  readonly em: Emitter;
  /** What the rule's forward hook saved (empty without one). */
  readonly saved: Readonly<Record<string, Value>>;
  /** The gradient of output `i` (default 0), or null when none flows into it. */
  dy(i?: number): Value | null;
  /** Whether input `i` needs a gradient (it is differentiable and depends on a trainable parameter). */
  needs(i: number): boolean;
}

/**
 * One op's gradient rule.
 *
 * @example
 * ```ts
 * export const Identity: GradRule = { differentiable: () => [0], backward: (ctx) => [ctx.dy()] };
 * ```
 */
export interface GradRule {
  /** Input indexes that can carry a gradient; shapes, indices, Clip bounds and running statistics never do. */
  differentiable(node: Node): readonly number[];
  /** Why this node's configuration has no gradient here (e.g. Pad in reflect mode), or undefined when it has one. */
  check?(node: Node, em: Emitter): string | undefined;
  /** Rewrites the node for training (runs in forward order, before any backward). */
  forward?(ctx: ForwardContext): ForwardResult | undefined;
  /** Emits the backward and returns the gradient of each input (null or undefined where none is needed or flows). */
  backward(ctx: GradContext): readonly (Value | null | undefined)[];
}

/**
 * Every gradient rule, by op type (default domain only).
 *
 * @example
 * ```ts
 * Object.keys(GRAD_RULES); // ['Add', 'AveragePool', …]
 * ```
 */
export const GRAD_RULES: Readonly<Record<string, GradRule>> = {
  Add,
  AveragePool,
  BatchNormalization,
  Clip,
  Concat,
  Conv,
  ConvTranspose,
  Div,
  Dropout,
  Flatten,
  Gemm,
  GlobalAveragePool,
  HardSigmoid,
  HardSwish,
  Identity,
  LeakyRelu,
  LogSoftmax,
  MatMul,
  MaxPool,
  Mul,
  Pad,
  ReduceMean,
  Relu,
  Reshape,
  Sigmoid,
  Slice,
  Softmax,
  Split,
  Squeeze,
  Sub,
  Tanh,
  Transpose,
  Unsqueeze,
};

/**
 * The rule for a node's op, or undefined (other domains have none).
 *
 * @example
 * ```ts
 * gradRuleFor('Relu', '')?.differentiable(node); // [0]
 * ```
 */
export function gradRuleFor(opType: string, domain = ''): GradRule | undefined {
  if (domain !== '' && domain !== 'ai.onnx') return undefined;
  return Object.hasOwn(GRAD_RULES, opType) ? GRAD_RULES[opType] : undefined;
}
