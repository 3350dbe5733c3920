/**
 * `Split`: `DQ(x) -> Split -> Q` with equal params on both sides, which onnxruntime rewrites to Split on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op moves values; every output shares the input params).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Split handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Split.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Split: OpHandler = {
  opType: 'Split',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
