/**
 * `Softmax` -> QLinearSoftmax (com.microsoft): `DQ(x) -> Softmax -> Q`. The output lies in [0, 1], so its params are
 * fixed rather than calibrated: scale 1/256 with the type's lowest code as zero point (uint8: 0, int8: -128), which
 * is what onnxruntime's own quantizer uses.
 */
import type { OpHandler } from './table.js';

/**
 * The Softmax handler.
 *
 * @example
 * ```ts
 * STATIC_HANDLERS.Softmax.plan(ctx).output; // { kind: 'fixed', range: { min: 0, max: 1 }, … }
 * ```
 */
export const Softmax: OpHandler = {
  opType: 'Softmax',
  plan(ctx) {
    if (!ctx.isFloatActivation(ctx.node.inputs[0])) return ctx.float('unsupported-shape', 'its input is not a float32 tensor computed at run time');
    return {
      quantize: true,
      activations: [0],
      output: { kind: 'fixed', range: { min: 0, max: 1 }, params: (type) => ({ scale: 1 / 256, zeroPoint: type === 'uint8' ? 0 : -128, type }) },
    };
  },
};
