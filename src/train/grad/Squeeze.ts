import type { GradRule } from './table.js';

/** Squeeze: dX = Reshape(dY, shape of X). */
export const Squeeze: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => [em.reshape(dy()!, em.shapeOf(node.input(0)))],
};
