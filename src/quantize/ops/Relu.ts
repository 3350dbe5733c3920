/**
 * `Relu`: fused into the quantized op before it (Conv, Gemm, MatMul, Add, Mul). There is no Q between that op
 * and the Relu; the Q after the Relu gets the Relu output's range, which starts at 0, so its zero point is the
 * type's lowest code and `Q(Relu(y)) = Q(y)`: onnxruntime then drops the Relu and fuses the op with the Q.
 * A Relu anywhere else has no integer kernel and stays float.
 */
import type { OpHandler } from './table.js';

/**
 * The Relu handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Relu.fusible!(ctx); // { min: 0, max: Infinity }
 * ```
 */
export const Relu: OpHandler = {
  opType: 'Relu',
  plan: (ctx) => ctx.float('no-integer-kernel', 'a Relu runs as part of an integer kernel only right after Conv, Gemm, MatMul, Add or Mul; here it runs in float'),
  fusible: () => ({ min: 0, max: Infinity }),
};
