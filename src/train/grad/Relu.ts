import type { GradRule } from './table.js';

/** Relu: dX = Where(Y > 0, dY, 0) (on the output, so X need not be kept; the probe's form). */
export const Relu: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const zero = em.f32(0);
    return [em.op('Where', [em.op('Greater', [node.output(0), zero]), dy()!, zero])];
  },
};
