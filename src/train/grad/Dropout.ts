import type { GradRule } from './table.js';

/**
 * Dropout: dX = dY. The step graph runs Dropout as in inference (onnxruntime does so unless `training_mode` is fed
 * true), so it is the identity forward and backward; the mask output carries no gradient. Training-mode dropout
 * would need the mask kept from the forward and a random seed per step, which the step graph does not have.
 */
export const Dropout: GradRule = {
  differentiable: () => [0],
  check: (node, em) => {
    const mode = em.constantOf(node.inputs[2]);
    return mode && mode[0] ? 'training_mode is true: the step graph runs Dropout as the identity (feed no training_mode)' : undefined;
  },
  backward: (ctx) => [ctx.dy()],
};
