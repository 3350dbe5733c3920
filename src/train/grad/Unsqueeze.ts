import type { GradRule } from './table.js';

/** Unsqueeze: dX = Reshape(dY, shape of X). */
export const Unsqueeze: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => [em.reshape(dy()!, em.shapeOf(node.input(0)))],
};
