/**
 * `Clip`: fused like Relu into the quantized op before it when its bounds are constants with min ≤ 0 < max (Relu6
 * is Clip(0, 6)). The Q after it takes the Clip output's range, which lies inside [min, max], so the Q saturates
 * where Clip would: `Q(Clip(y, lo, hi)) = Q(y)` when the codes of lo and hi are at or beyond the type's ends.
 * The quantizer checks that condition with the final params (as onnxruntime's IsClipMadeRedundantByQ computes it)
 * and widens the range to [min, max] when rounding breaks it. Any other Clip stays float.
 */
import type { OpHandler } from './table.js';

const FLT_MAX = 3.4028234663852886e38;

/**
 * The Clip handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Clip.fusible!(ctx); // { min: 0, max: 6 } for Relu6
 * ```
 */
export const Clip: OpHandler = {
  opType: 'Clip',
  plan: (ctx) => ctx.float('no-integer-kernel', 'a Clip runs as part of an integer kernel only right after Conv, Gemm, MatMul, Add or Mul; here it runs in float'),
  fusible(ctx) {
    const { node } = ctx;
    let min = -FLT_MAX;
    let max = FLT_MAX;
    if (ctx.opset < 11) {
      min = node.getFloat('min', min);
      max = node.getFloat('max', max);
    } else {
      for (const [i, set] of [[1, (v: number) => (min = v)], [2, (v: number) => (max = v)]] as const) {
        const v = node.inputs[i];
        if (!v) continue;
        const t = ctx.floatConstant(v);
        if (!t || t.size !== 1) return `its ${i === 1 ? 'min' : 'max'} is not a float32 constant scalar`;
        set(t.data<Float32Array>()[0]!);
      }
    }
    if (!(min <= 0 && max > 0 && max < FLT_MAX && min > -FLT_MAX)) return `its bounds [${min}, ${max}] do not contain 0 with both ends finite`;
    return { min, max };
  },
};
