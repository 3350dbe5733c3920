import type { Handler } from '../context.js';
import { poolShape } from '../rules.js';

/** LpPool: [N, C, ...windows] with x's type. */
export const LpPool: Handler = (ctx) => [{ elemType: ctx.elemType(0), shape: poolShape(ctx) }];
