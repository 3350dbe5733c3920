import type { GradRule } from './table.js';

/** Div (broadcasting): dA = dY/B, dB = −dY·Y/B (Y = A/B, so A is not re-divided), each summed back to its input's shape. */
export const Div: GradRule = {
  differentiable: () => [0, 1],
  backward: ({ node, em, dy, needs }) => {
    const g = dy()!;
    const [a, b] = [node.input(0), node.input(1)];
    const ys = em.shape(node.output(0));
    return [
      needs(0) ? em.reduceTo(em.div(g, b), ys, a) : null,
      needs(1) ? em.reduceTo(em.op('Neg', [em.div(em.mul(g, node.output(0)), b)]), ys, b) : null,
    ];
  },
};
