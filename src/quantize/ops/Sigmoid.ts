/**
 * `Sigmoid` -> QLinearSigmoid (com.microsoft): `DQ(x) -> Sigmoid -> Q`. The output lies in [0, 1], so its params
 * come from that range rather than from calibration (scale 1/255, zero point the type's lowest code).
 */
import { computeQParams } from '../qdq.js';
import type { OpHandler } from './table.js';

/**
 * The Sigmoid handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Sigmoid.plan(ctx).output; // { kind: 'fixed', range: { min: 0, max: 1 }, … }
 * ```
 */
export const Sigmoid: OpHandler = {
  opType: 'Sigmoid',
  plan(ctx) {
    if (!ctx.isFloatActivation(ctx.node.inputs[0])) return ctx.float('unsupported-shape', 'its input is not a float32 tensor computed at run time');
    const range = { min: 0, max: 1 };
    return { quantize: true, activations: [0], output: { kind: 'fixed', range, params: (type) => computeQParams(range, type) } };
  },
};
