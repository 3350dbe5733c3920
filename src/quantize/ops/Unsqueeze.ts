/**
 * `Unsqueeze`: `DQ(x) -> Unsqueeze -> Q` with equal params on both sides, which onnxruntime rewrites to Unsqueeze on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op moves or repeats values without changing them).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Unsqueeze handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Unsqueeze.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Unsqueeze: OpHandler = {
  opType: 'Unsqueeze',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
