/**
 * `Resize`: `DQ(x) -> Resize -> Q` with equal params on both sides, which onnxruntime rewrites to Resize on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op interpolates between values (nearest, linear) on uint8 directly).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The Resize handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Resize.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const Resize: OpHandler = {
  opType: 'Resize',
  plan(ctx) {
    return ctx.shareParams([0]);
  },
};
