import type { Handler } from '../context.js';
import { castElements } from '../rules.js';

/** CastLike: x's shape with target_type's element type (input 1); known elements are converted. */
export const CastLike: Handler = (ctx) => {
  const to = ctx.elemType(1);
  return [{ elemType: to, shape: ctx.shape(0), value: castElements(ctx.value(0), to) }];
};
