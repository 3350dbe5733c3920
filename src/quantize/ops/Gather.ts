/**
 * `Gather`: `DQ(x) -> Gather -> Q` with equal params on both sides, which onnxruntime rewrites to Gather on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op selects values along an axis (input 0 is the data)).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Gather handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Gather.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Gather: OpHandler = {
  opType: 'Gather',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
