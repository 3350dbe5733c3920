import type { Handler } from '../context.js';
import { productDim } from '../dims.js';

/** Size: an int64 scalar, the product of x's dims. */
export const Size: Handler = (ctx) => {
  const shape = ctx.shape(0);
  return [{ elemType: 'int64', shape: [], value: shape && [productDim(shape)] }];
};
