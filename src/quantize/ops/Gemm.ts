/**
 * `Gemm` -> QGemm (com.microsoft): `DQ(A), DQ(int8 B per output column), DQ(int32 C) -> Gemm -> [Relu | Clip] -> [Q]`.
 * Without a Q after it onnxruntime's QGemm writes float, so the output is quantized only when a quantized op reads it.
 *
 * B's output dimension N is axis 0 when transB = 1 (PyTorch's layout, [N, K]) and axis 1 otherwise. Rewrites, so
 * that the bias fuses (QGemm wants beta = 1) and the bias scale is A's scale times B's:
 * - `Gemm(A, B, C; alpha, beta) = Gemm(A, alpha·B, beta·C; 1, 1)`.
 * - C with one element is broadcast to [N]; C must otherwise end in N (it is [N], [1, N] or [M, N]).
 */
import { attr } from '../../onnx/ir.js';
import type { OpHandler, WeightPlan } from './table.js';

/**
 * The Gemm handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Gemm.plan(ctx).weights; // [{ input: 1, kind: 'weight', axis: 0 }] for transB = 1
 * ```
 */
export const Gemm: OpHandler = {
  opType: 'Gemm',
  plan(ctx) {
    const { node } = ctx;
    if (!ctx.isFloatActivation(node.inputs[0])) return ctx.float('unsupported-shape', 'its input A is not a float32 tensor computed at run time');
    const alpha = node.getFloat('alpha', 1);
    const beta = node.getFloat('beta', 1);
    const transB = node.getInt('transB', 0);
    const w = ctx.floatConstant(node.inputs[1]);
    const activations = [0];
    const weights: WeightPlan[] = [];
    if (w) {
      if (w.dims.length !== 2) return ctx.float('unsupported-shape', `its B has rank ${w.dims.length}, not 2`);
      weights.push({ input: 1, kind: 'weight', axis: transB ? 0 : 1, multiplier: alpha });
    } else if (ctx.isFloatActivation(node.inputs[1]) && alpha === 1) {
      activations.push(1);
    } else {
      return ctx.float('not-constant-weight', 'its B is not a float32 constant (nor a float32 activation with alpha = 1)');
    }
    const c = node.inputs[2];
    let bias;
    if (c) {
      const ct = ctx.floatConstant(c);
      if (!ct) return ctx.float('not-constant-weight', 'its C is not a float32 constant');
      if (!w) return ctx.float('unsupported-shape', 'an int32 C needs a constant B');
      const n = w.dims[transB ? 0 : 1]!;
      if (ct.size !== 1 && ct.dims[ct.dims.length - 1] !== n) return ctx.float('unsupported-shape', `its C has dims [${ct.dims.join(', ')}], which do not end in N = ${n}`);
      bias = { input: 2, activation: 0, weight: 1, channels: n, multiplier: beta };
    }
    return {
      quantize: true,
      activations,
      weights,
      bias,
      output: { kind: 'own', required: false, absorbsActivation: true },
      setAttributes: { ...(w ? { alpha: attr.float(1) } : {}), ...(c ? { beta: attr.float(1) } : {}) },
    };
  },
};
