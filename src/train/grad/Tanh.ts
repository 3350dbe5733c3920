import type { GradRule } from './table.js';

/** Tanh: dX = dY·(1 − Y²). */
export const Tanh: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const y = node.output(0);
    return [em.mul(dy()!, em.sub(em.f32(1), em.mul(y, y)))];
  },
};
