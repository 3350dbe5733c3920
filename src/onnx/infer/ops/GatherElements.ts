import type { Handler } from '../context.js';

/** GatherElements: indices' shape with data's type. */
export const GatherElements: Handler = (ctx) => [{ elemType: ctx.elemType(0), shape: ctx.shape(1) }];
