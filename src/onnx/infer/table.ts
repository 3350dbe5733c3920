/**
 * The inference table: ONNX op type (default domain) → handler, one handler per file in `ops/`, named verbatim.
 * An explicit list, so what is covered is visible here and a test can check it against `ops/`.
 */
import type { Handler } from './context.js';
import { Abs } from './ops/Abs.js';
import { Acos } from './ops/Acos.js';
import { Acosh } from './ops/Acosh.js';
import { Add } from './ops/Add.js';
import { And } from './ops/And.js';
import { ArgMax } from './ops/ArgMax.js';
import { ArgMin } from './ops/ArgMin.js';
import { Asin } from './ops/Asin.js';
import { Asinh } from './ops/Asinh.js';
import { Atan } from './ops/Atan.js';
import { Atanh } from './ops/Atanh.js';
import { AveragePool } from './ops/AveragePool.js';
import { BatchNormalization } from './ops/BatchNormalization.js';
import { BitShift } from './ops/BitShift.js';
import { Cast } from './ops/Cast.js';
import { CastLike } from './ops/CastLike.js';
import { Ceil } from './ops/Ceil.js';
import { Celu } from './ops/Celu.js';
import { Clip } from './ops/Clip.js';
import { Concat } from './ops/Concat.js';
import { Constant } from './ops/Constant.js';
import { ConstantOfShape } from './ops/ConstantOfShape.js';
import { Conv } from './ops/Conv.js';
import { ConvInteger } from './ops/ConvInteger.js';
import { ConvTranspose } from './ops/ConvTranspose.js';
import { Cos } from './ops/Cos.js';
import { Cosh } from './ops/Cosh.js';
import { CumSum } from './ops/CumSum.js';
import { DepthToSpace } from './ops/DepthToSpace.js';
import { DequantizeLinear } from './ops/DequantizeLinear.js';
import { Div } from './ops/Div.js';
import { Dropout } from './ops/Dropout.js';
import { DynamicQuantizeLinear } from './ops/DynamicQuantizeLinear.js';
import { Einsum } from './ops/Einsum.js';
import { Elu } from './ops/Elu.js';
import { Equal } from './ops/Equal.js';
import { Erf } from './ops/Erf.js';
import { Exp } from './ops/Exp.js';
import { Expand } from './ops/Expand.js';
import { EyeLike } from './ops/EyeLike.js';
import { Flatten } from './ops/Flatten.js';
import { Floor } from './ops/Floor.js';
import { Gather } from './ops/Gather.js';
import { GatherElements } from './ops/GatherElements.js';
import { GatherND } from './ops/GatherND.js';
import { Gelu } from './ops/Gelu.js';
import { Gemm } from './ops/Gemm.js';
import { GlobalAveragePool } from './ops/GlobalAveragePool.js';
import { GlobalLpPool } from './ops/GlobalLpPool.js';
import { GlobalMaxPool } from './ops/GlobalMaxPool.js';
import { Greater } from './ops/Greater.js';
import { GreaterOrEqual } from './ops/GreaterOrEqual.js';
import { HardSigmoid } from './ops/HardSigmoid.js';
import { HardSwish } from './ops/HardSwish.js';
import { Hardmax } from './ops/Hardmax.js';
import { Identity } from './ops/Identity.js';
import { If } from './ops/If.js';
import { InstanceNormalization } from './ops/InstanceNormalization.js';
import { IsInf } from './ops/IsInf.js';
import { IsNaN } from './ops/IsNaN.js';
import { LRN } from './ops/LRN.js';
import { LayerNormalization } from './ops/LayerNormalization.js';
import { LeakyRelu } from './ops/LeakyRelu.js';
import { Less } from './ops/Less.js';
import { LessOrEqual } from './ops/LessOrEqual.js';
import { Log } from './ops/Log.js';
import { LogSoftmax } from './ops/LogSoftmax.js';
import { LpNormalization } from './ops/LpNormalization.js';
import { LpPool } from './ops/LpPool.js';
import { MatMul } from './ops/MatMul.js';
import { MatMulInteger } from './ops/MatMulInteger.js';
import { Max } from './ops/Max.js';
import { MaxPool } from './ops/MaxPool.js';
import { Mean } from './ops/Mean.js';
import { MeanVarianceNormalization } from './ops/MeanVarianceNormalization.js';
import { Min } from './ops/Min.js';
import { Mish } from './ops/Mish.js';
import { Mod } from './ops/Mod.js';
import { Mul } from './ops/Mul.js';
import { Neg } from './ops/Neg.js';
import { NonZero } from './ops/NonZero.js';
import { Not } from './ops/Not.js';
import { OneHot } from './ops/OneHot.js';
import { Or } from './ops/Or.js';
import { PRelu } from './ops/PRelu.js';
import { Pad } from './ops/Pad.js';
import { Pow } from './ops/Pow.js';
import { QLinearConv } from './ops/QLinearConv.js';
import { QLinearMatMul } from './ops/QLinearMatMul.js';
import { QuantizeLinear } from './ops/QuantizeLinear.js';
import { Range } from './ops/Range.js';
import { Reciprocal } from './ops/Reciprocal.js';
import { ReduceL1 } from './ops/ReduceL1.js';
import { ReduceL2 } from './ops/ReduceL2.js';
import { ReduceLogSum } from './ops/ReduceLogSum.js';
import { ReduceLogSumExp } from './ops/ReduceLogSumExp.js';
import { ReduceMax } from './ops/ReduceMax.js';
import { ReduceMean } from './ops/ReduceMean.js';
import { ReduceMin } from './ops/ReduceMin.js';
import { ReduceProd } from './ops/ReduceProd.js';
import { ReduceSum } from './ops/ReduceSum.js';
import { ReduceSumSquare } from './ops/ReduceSumSquare.js';
import { Relu } from './ops/Relu.js';
import { Reshape } from './ops/Reshape.js';
import { Resize } from './ops/Resize.js';
import { ReverseSequence } from './ops/ReverseSequence.js';
import { Round } from './ops/Round.js';
import { Scatter } from './ops/Scatter.js';
import { ScatterElements } from './ops/ScatterElements.js';
import { ScatterND } from './ops/ScatterND.js';
import { Selu } from './ops/Selu.js';
import { Shape } from './ops/Shape.js';
import { Shrink } from './ops/Shrink.js';
import { Sigmoid } from './ops/Sigmoid.js';
import { Sign } from './ops/Sign.js';
import { Sin } from './ops/Sin.js';
import { Sinh } from './ops/Sinh.js';
import { Size } from './ops/Size.js';
import { Slice } from './ops/Slice.js';
import { Softmax } from './ops/Softmax.js';
import { Softplus } from './ops/Softplus.js';
import { Softsign } from './ops/Softsign.js';
import { SpaceToDepth } from './ops/SpaceToDepth.js';
import { Split } from './ops/Split.js';
import { Sqrt } from './ops/Sqrt.js';
import { Squeeze } from './ops/Squeeze.js';
import { Sub } from './ops/Sub.js';
import { Sum } from './ops/Sum.js';
import { Tan } from './ops/Tan.js';
import { Tanh } from './ops/Tanh.js';
import { ThresholdedRelu } from './ops/ThresholdedRelu.js';
import { Tile } from './ops/Tile.js';
import { TopK } from './ops/TopK.js';
import { Transpose } from './ops/Transpose.js';
import { Trilu } from './ops/Trilu.js';
import { Unsqueeze } from './ops/Unsqueeze.js';
import { Upsample } from './ops/Upsample.js';
import { Where } from './ops/Where.js';
import { Xor } from './ops/Xor.js';

/**
 * Handlers by op type, for the default domain (`''` / `ai.onnx`).
 *
 * @example
 * ```ts
 * Object.keys(HANDLERS).includes('Conv'); // true
 * ```
 */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  Abs,
  Acos,
  Acosh,
  Add,
  And,
  ArgMax,
  ArgMin,
  Asin,
  Asinh,
  Atan,
  Atanh,
  AveragePool,
  BatchNormalization,
  BitShift,
  Cast,
  CastLike,
  Ceil,
  Celu,
  Clip,
  Concat,
  Constant,
  ConstantOfShape,
  Conv,
  ConvInteger,
  ConvTranspose,
  Cos,
  Cosh,
  CumSum,
  DepthToSpace,
  DequantizeLinear,
  Div,
  Dropout,
  DynamicQuantizeLinear,
  Einsum,
  Elu,
  Equal,
  Erf,
  Exp,
  Expand,
  EyeLike,
  Flatten,
  Floor,
  Gather,
  GatherElements,
  GatherND,
  Gelu,
  Gemm,
  GlobalAveragePool,
  GlobalLpPool,
  GlobalMaxPool,
  Greater,
  GreaterOrEqual,
  HardSigmoid,
  HardSwish,
  Hardmax,
  Identity,
  If,
  InstanceNormalization,
  IsInf,
  IsNaN,
  LRN,
  LayerNormalization,
  LeakyRelu,
  Less,
  LessOrEqual,
  Log,
  LogSoftmax,
  LpNormalization,
  LpPool,
  MatMul,
  MatMulInteger,
  Max,
  MaxPool,
  Mean,
  MeanVarianceNormalization,
  Min,
  Mish,
  Mod,
  Mul,
  Neg,
  NonZero,
  Not,
  OneHot,
  Or,
  PRelu,
  Pad,
  Pow,
  QLinearConv,
  QLinearMatMul,
  QuantizeLinear,
  Range,
  Reciprocal,
  ReduceL1,
  ReduceL2,
  ReduceLogSum,
  ReduceLogSumExp,
  ReduceMax,
  ReduceMean,
  ReduceMin,
  ReduceProd,
  ReduceSum,
  ReduceSumSquare,
  Relu,
  Reshape,
  Resize,
  ReverseSequence,
  Round,
  Scatter,
  ScatterElements,
  ScatterND,
  Selu,
  Shape,
  Shrink,
  Sigmoid,
  Sign,
  Sin,
  Sinh,
  Size,
  Slice,
  Softmax,
  Softplus,
  Softsign,
  SpaceToDepth,
  Split,
  Sqrt,
  Squeeze,
  Sub,
  Sum,
  Tan,
  Tanh,
  ThresholdedRelu,
  Tile,
  TopK,
  Transpose,
  Trilu,
  Unsqueeze,
  Upsample,
  Where,
  Xor,
};

/**
 * The handler for a node's op, or undefined for ops (and domains) inference does not cover.
 *
 * @example
 * ```ts
 * handlerFor('Conv'); // the Conv handler
 * handlerFor('MyOp', 'com.example'); // undefined
 * ```
 */
export function handlerFor(opType: string, domain = ''): Handler | undefined {
  if (domain !== '' && domain !== 'ai.onnx') return undefined;
  return Object.hasOwn(HANDLERS, opType) ? HANDLERS[opType] : undefined;
}
