import type { GradRule } from './table.js';

/** Softmax (opset ≥ 13, one axis, default −1): dX = Y·(dY − Σ_axis dY·Y). */
export const Softmax: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const y = node.output(0);
    const rank = em.rank(y);
    const axis = node.getInt('axis', -1);
    const g = dy()!;
    const dot = em.reduceSum(em.mul(g, y), [axis < 0 ? axis + rank : axis], true);
    return [em.mul(y, em.sub(g, dot))];
  },
};
