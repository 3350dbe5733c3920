import type { Handler } from '../context.js';

/** OneHot: indices' shape with `depth` (input 1) inserted at axis, with the type of values (input 2). */
export const OneHot: Handler = (ctx) => {
  const indices = ctx.shape(0);
  const elemType = ctx.elemType(2);
  if (!indices) return [{ elemType }];
  const depth = ctx.numbers(1)?.[0];
  const axis = ctx.axis(ctx.node.getInt('axis', -1), indices.length + 1);
  const shape = [...indices.slice(0, axis), depth === undefined ? null : Math.trunc(depth), ...indices.slice(axis)];
  return [{ elemType, shape }];
};
