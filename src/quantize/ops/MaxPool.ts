/**
 * `MaxPool`: `DQ(x) -> MaxPool -> Q` with equal params on both sides, which onnxruntime rewrites to MaxPool on the integers
 * (`Q(op(DQ(x))) = op(x)` when the params are equal and op selects values, so a max of codes is the code of the max; int8/uint8 MaxPool exists from opset 12, and onnxruntime drops the Q/DQ around it only when the scale is positive (always, here)).
 * Quantized only when its input already carries a Q/DQ pair, so it never adds one of its own.
 */
import type { OpHandler } from './table.js';

/**
 * The MaxPool handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.MaxPool.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'shared', inputs: [0] } }
 * ```
 */
export const MaxPool: OpHandler = {
  opType: 'MaxPool',
  sinceOpset: 12,
  plan(ctx) {
    if (ctx.node.outputs.length > 1 && ctx.node.outputs[1]) return ctx.float('unsupported-shape', 'its Indices output is used');
    return ctx.shareParams([0]);
  },
};
