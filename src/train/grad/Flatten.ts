import type { GradRule } from './table.js';

/** Flatten: dX = Reshape(dY, shape of X). */
export const Flatten: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => [em.reshape(dy()!, em.shapeOf(node.input(0)))],
};
