/**
 * `Transpose`: `DQ(x) -> Transpose -> Q` with equal params on both sides, which onnxruntime rewrites to Transpose on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op moves or repeats values without changing them).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Transpose handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Transpose.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Transpose: OpHandler = {
  opType: 'Transpose',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
