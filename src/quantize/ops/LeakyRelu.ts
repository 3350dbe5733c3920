/**
 * `LeakyRelu` -> QLinearLeakyRelu (com.microsoft): `DQ(x) -> LeakyRelu -> Q`, the output with its own calibrated params.
 */
import type { OpHandler } from './table.js';

/**
 * The LeakyRelu handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.LeakyRelu.plan(ctx); // { quantize: true, activations: [0], output: { kind: 'own', … } }
 * ```
 */
export const LeakyRelu: OpHandler = {
  opType: 'LeakyRelu',
  plan(ctx) {
    if (!ctx.isFloatActivation(ctx.node.inputs[0])) return ctx.float('unsupported-shape', 'its input is not a float32 tensor computed at run time');
    if (ctx.node.outputs.length > 1) return ctx.float('unsupported-shape', 'it has more than one output');
    return { quantize: true, activations: [0], output: { kind: 'own', required: true, absorbsActivation: false } };
  },
};
