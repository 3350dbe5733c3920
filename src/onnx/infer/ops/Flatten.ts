import type { Handler } from '../context.js';
import { productDim } from '../dims.js';

/** Flatten: [d0·…·d(axis−1), d(axis)·…·d(n−1)] with x's type; axis may equal the rank, and be negative from opset 11. */
export const Flatten: Handler = (ctx) => {
  const x = ctx.type(0);
  if (!x?.shape) return [x && { elemType: x.elemType }];
  const rank = x.shape.length;
  const given = ctx.node.getInt('axis', 1);
  const axis = given < 0 ? given + rank : given;
  if (axis < 0 || axis > rank) ctx.fail(`axis ${given} is out of range for ${ctx.describe(0)}`);
  return [{ elemType: x.elemType, shape: [productDim(x.shape.slice(0, axis)), productDim(x.shape.slice(axis))] }];
};
