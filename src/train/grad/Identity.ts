import type { GradRule } from './table.js';

/** Identity: dX = dY. */
export const Identity: GradRule = {
  differentiable: () => [0],
  backward: (ctx) => [ctx.dy()],
};
