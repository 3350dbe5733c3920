import type { GradRule } from './table.js';

/**
 * HardSigmoid, Y = max(0, min(1, alpha·X + beta)): dX = alpha·dY where 0 < Y < 1, else 0 (the ends of the ramp
 * count as flat, as in PyTorch's hardsigmoid_backward).
 */
export const HardSigmoid: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const alpha = node.getFloat('alpha', 0.2);
    const y = node.output(0);
    const inside = em.op('And', [em.op('Greater', [y, em.f32(0)]), em.op('Less', [y, em.f32(1)])]);
    return [em.op('Where', [inside, em.scale(dy()!, alpha), em.f32(0)])];
  },
};
