import type { GradRule } from './table.js';

/** Mul (broadcasting): dA = dY·B, dB = dY·A, each summed back to its input's shape. */
export const Mul: GradRule = {
  differentiable: () => [0, 1],
  backward: ({ node, em, dy, needs }) => {
    const g = dy()!;
    const [a, b] = [node.input(0), node.input(1)];
    const ys = em.shape(node.output(0));
    return [needs(0) ? em.reduceTo(em.mul(g, b), ys, a) : null, needs(1) ? em.reduceTo(em.mul(g, a), ys, b) : null];
  },
};
