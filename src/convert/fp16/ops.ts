/**
 * The tables behind `convert.fp16`: which ONNX ops stay in float32, which inputs of converted ops stay float32, and
 * which inputs take any element type. Explicit lists, so that what is kept, and why, is visible in one place.
 *
 * Why an op stays float32 is one of: its schema has no float16 (then a float16 model would not be valid), its
 * numerics break in float16 (overflow past 65504, or integer-valued data beyond 2048, where float16's spacing
 * exceeds 1), or its output type comes from an attribute that a sampling op uses on purpose. onnxruntime's CPU
 * provider lacks float16 kernels for most ops and casts around them by itself (its InsertCastTransformer), so CPU
 * support is not a reason to keep an op; schema validity and numerics are.
 */

/** ONNX ops (default domain) kept in float32, with the reason given in the pass's notes. */
export const FLOAT32_OPS: Readonly<Record<string, string>> = {
  // no float16 in the schema
  Range: 'Range has no float16 type in its schema',
  NonMaxSuppression: 'its boxes and scores are float32 by schema',
  Celu: 'Celu is float32-only by schema',
  TfIdfVectorizer: 'its output is float32 by schema',
  IsInf: 'IsInf takes float16 only from opset 20',
  // coordinates and counts need float32's precision
  RoiAlign: 'box coordinates lose precision in float16 (its spacing is 1 from 1024 up)',
  MaxRoiPool: 'box coordinates lose precision in float16 (its spacing is 1 from 1024 up)',
  GridSample: 'sampling coordinates lose precision in float16',
  TopK: 'ties made by float16 rounding would change which indices are picked',
  // onnxruntime cannot run these in float16 and cannot cast around them
  EyeLike: 'onnxruntime has no float16 EyeLike and cannot cast around it (its output type is an attribute)',
  MeanVarianceNormalization: 'onnxruntime expands it into a function body with float32 constants',
  // accumulations, squares, products and exponentials overflow 65504
  CumSum: 'running sums overflow float16 (and CumSum before opset 14 has no float16)',
  ReduceSumSquare: 'sums of squares overflow float16',
  ReduceL2: 'sums of squares overflow float16',
  ReduceProd: 'products overflow float16',
  ReduceLogSumExp: 'exponentials overflow float16',
  Det: 'determinants overflow float16',
  SoftmaxCrossEntropyLoss: 'loss reductions accumulate over the batch',
  NegativeLogLikelihoodLoss: 'loss reductions accumulate over the batch',
  // the output type is an attribute; sampling in float16 changes the distribution's resolution
  RandomNormal: 'random sampling keeps the dtype its attribute asks for',
  RandomUniform: 'random sampling keeps the dtype its attribute asks for',
  RandomNormalLike: 'random sampling keeps the dtype its attribute asks for',
  RandomUniformLike: 'random sampling keeps the dtype its attribute asks for',
  Multinomial: 'random sampling keeps the dtype its attribute asks for',
  Bernoulli: 'random sampling keeps the dtype its attribute asks for',
  // signal processing: long sums and phase precision
  DFT: 'Fourier transforms accumulate long sums',
  STFT: 'Fourier transforms accumulate long sums',
  MelWeightMatrix: 'signal-processing constants keep their dtype attribute',
  BlackmanWindow: 'signal-processing constants keep their dtype attribute',
  HammingWindow: 'signal-processing constants keep their dtype attribute',
  HannWindow: 'signal-processing constants keep their dtype attribute',
  // quantization: scales are float32 in the schema before opsets 19/21 and in onnxruntime's integer kernels
  QuantizeLinear: 'quantization scales stay float32 (schema before opset 19, onnxruntime integer kernels)',
  DequantizeLinear: 'quantization scales stay float32 (schema before opset 19, onnxruntime integer kernels)',
  DynamicQuantizeLinear: 'DynamicQuantizeLinear is float32-only by schema',
  QLinearConv: 'quantization scales are float32 by schema',
  QLinearMatMul: 'quantization scales are float32 by schema before opset 21',
};

/**
 * Inputs of converted ops that stay float32 (by index), given the model's opset: sizes and coordinates, which
 * the schema types as float32 or which need its precision.
 */
export function float32Inputs(opType: string, opset: number): readonly number[] {
  switch (opType) {
    case 'Resize':
      // Resize-10 (X, scales); from 11 (X, roi, scales, sizes): scales is float32 by schema, roi is coordinates
      return opset >= 11 ? [1, 2] : [1];
    case 'Upsample':
      return [1]; // scales, float32 by schema (Upsample-9)
    default:
      return [];
  }
}

/** Outputs of converted ops that stay float32 by schema (by index). */
export const FLOAT32_OUTPUTS: Readonly<Record<string, readonly number[]>> = {
  LayerNormalization: [1, 2], // Mean and InvStdDev are typed by stash_type, float32
};

/** Inputs that take any element type, so that a float32 value there needs no Cast (only its shape or bits are read). */
export const ANY_TYPE_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Cast: [0],
  CastLike: [0],
  Shape: [0],
  Size: [0],
};
