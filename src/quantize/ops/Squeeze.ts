/**
 * `Squeeze`: `DQ(x) -> Squeeze -> Q` with equal params on both sides, which onnxruntime rewrites to Squeeze on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op moves or repeats values without changing them).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Squeeze handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Squeeze.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Squeeze: OpHandler = {
  opType: 'Squeeze',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
