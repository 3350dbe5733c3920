/**
 * `Expand`: `DQ(x) -> Expand -> Q` with equal params on both sides, which onnxruntime rewrites to Expand on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op moves or repeats values without changing them).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Expand handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Expand.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Expand: OpHandler = {
  opType: 'Expand',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
