import type { GradRule } from './table.js';

/** Sigmoid: dX = dY·Y·(1 − Y). */
export const Sigmoid: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const y = node.output(0);
    return [em.mul(dy()!, em.mul(y, em.sub(em.f32(1), y)))];
  },
};
