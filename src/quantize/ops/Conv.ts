/**
 * `Conv` -> QLinearConv: `DQ(x), DQ(int8 W per output channel), DQ(int32 bias) -> Conv -> [Relu | Clip] -> Q`.
 * W is [M, C/group, k...]: per-channel along axis 0; the bias scale is x's scale times W's scale per channel.
 */
import type { OpHandler } from './table.js';

/**
 * The Conv handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Conv.plan(ctx); // { quantize: true, activations: [0], weights: [{ input: 1, axis: 0, … }], … }
 * ```
 */
export const Conv: OpHandler = {
  opType: 'Conv',
  plan(ctx) {
    const { node } = ctx;
    if (!ctx.isFloatActivation(node.inputs[0])) return ctx.float('unsupported-shape', 'its input is not a float32 tensor computed at run time');
    const w = ctx.floatConstant(node.inputs[1]);
    if (!w) return ctx.float('not-constant-weight', 'its weight is not a float32 constant');
    const b = node.inputs[2];
    if (b && !ctx.floatConstant(b)) return ctx.float('not-constant-weight', 'its bias is not a float32 constant');
    return {
      quantize: true,
      activations: [0],
      weights: [{ input: 1, kind: 'weight', axis: 0 }],
      bias: b ? { input: 2, activation: 0, weight: 1, channels: w.dims[0]! } : undefined,
      output: { kind: 'own', required: true, absorbsActivation: true },
    };
  },
};
