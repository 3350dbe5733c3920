import type { GradRule } from './table.js';

/** LogSoftmax (opset ≥ 13, one axis, default −1): dX = dY − exp(Y)·Σ_axis dY. */
export const LogSoftmax: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const y = node.output(0);
    const rank = em.rank(y);
    const axis = node.getInt('axis', -1);
    const g = dy()!;
    const total = em.reduceSum(g, [axis < 0 ? axis + rank : axis], true);
    return [em.sub(g, em.mul(em.op('Exp', [y]), total))];
  },
};
