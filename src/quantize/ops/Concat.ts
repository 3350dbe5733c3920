/**
 * `Concat` -> QLinearConcat (com.microsoft): `DQ(x1), …, DQ(xn) -> Concat -> Q`. All inputs share the output's
 * params (their union range), so the kernel only copies bytes. Quantized when any input already is; a constant
 * input keeps it float.
 */
import type { OpHandler } from './table.js';

/**
 * The Concat handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Concat.plan(ctx).output; // { kind: 'shared', inputs: [0, 1, …] }
 * ```
 */
export const Concat: OpHandler = {
  opType: 'Concat',
  plan(ctx) {
    const inputs = ctx.node.inputs.map((_, i) => i);
    if (ctx.node.inputs.some((v) => ctx.floatConstant(v))) return ctx.float('unsupported-shape', 'one of its inputs is a constant');
    return ctx.shareParams(inputs);
  },
};
