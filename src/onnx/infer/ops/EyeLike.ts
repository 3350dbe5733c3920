import { dtypeFromCode } from '../../dtype.js';
import type { Handler } from '../context.js';

/** EyeLike: the 2-D shape of x, with the `dtype` attribute's element type or else x's. */
export const EyeLike: Handler = (ctx) => {
  const code = ctx.node.getInt('dtype', 0);
  return [{ elemType: code ? dtypeFromCode(code) : ctx.elemType(0), shape: ctx.shape(0) }];
};
