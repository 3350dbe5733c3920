import type { GradRule } from './table.js';

/** LeakyRelu: dX = Where(X > 0, dY, alpha·dY) (alpha default 0.01). */
export const LeakyRelu: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const alpha = node.getFloat('alpha', 0.01);
    const g = dy()!;
    return [em.op('Where', [em.op('Greater', [node.input(0), em.f32(0)]), g, em.scale(g, alpha)])];
  },
};
