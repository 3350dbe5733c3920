import type { Handler } from '../context.js';

/** NonZero: int64 [rank of x, number of non-zeros] (the count is data-dependent, so unknown). */
export const NonZero: Handler = (ctx) => [{ elemType: 'int64', shape: [ctx.shape(0)?.length ?? null, null] }];
