import type { GradRule } from './table.js';

/**
 * HardSwish, Y = X·max(0, min(1, X/6 + 1/2)): dX = 0 for X < −3, dY for X > 3, dY·(X/3 + 1/2) between (PyTorch's
 * hardswish_backward, which takes X = 3 to the ramp and X = −3 to the ramp too).
 */
export const HardSwish: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const x = node.input(0);
    const g = dy()!;
    const ramp = em.mul(g, em.add(em.scale(x, 1 / 3), em.f32(0.5)));
    const upper = em.op('Where', [em.op('Greater', [x, em.f32(3)]), g, ramp]);
    return [em.op('Where', [em.op('Less', [x, em.f32(-3)]), em.f32(0), upper])];
  },
};
