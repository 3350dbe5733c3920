import type { GradRule } from './table.js';

/** Add (broadcasting): dA = dY and dB = dY, each summed back to its input's shape. */
export const Add: GradRule = {
  differentiable: () => [0, 1],
  backward: ({ node, em, dy, needs }) => {
    const g = dy()!;
    const ys = em.shape(node.output(0));
    return [needs(0) ? em.reduceTo(g, ys, node.input(0)) : null, needs(1) ? em.reduceTo(g, ys, node.input(1)) : null];
  },
};
