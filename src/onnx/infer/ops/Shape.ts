import type { Handler } from '../context.js';

/** Shape: int64 [rank] holding x's dims, symbols included (opset 15: dims start…end, negative from the end, clamped). */
export const Shape: Handler = (ctx) => {
  const shape = ctx.shape(0);
  if (!shape) return [{ elemType: 'int64', shape: [null] }];
  const rank = shape.length;
  const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + rank : i, 0), rank);
  const dims = ctx.opset >= 15 ? shape.slice(clamp(ctx.node.getInt('start', 0)), clamp(ctx.node.getInt('end', rank))) : shape;
  return [{ elemType: 'int64', shape: [dims.length], value: dims }];
};
