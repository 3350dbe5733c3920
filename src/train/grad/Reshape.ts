import type { GradRule } from './table.js';

/** Reshape: dX = Reshape(dY, shape of X). The target shape gets no gradient. */
export const Reshape: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => [em.reshape(dy()!, em.shapeOf(node.input(0)))],
};
