import type { Handler } from '../context.js';
import { poolShape } from '../rules.js';

/** MaxPool: [N, C, ...windows] with x's type, and int64 Indices of the same shape. */
export const MaxPool: Handler = (ctx) => {
  const shape = poolShape(ctx);
  return [{ elemType: ctx.elemType(0), shape }, { elemType: 'int64', shape }];
};
