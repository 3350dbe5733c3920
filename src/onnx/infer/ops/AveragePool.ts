import type { Handler } from '../context.js';
import { poolShape } from '../rules.js';

/** AveragePool: [N, C, ...windows] with x's type. */
export const AveragePool: Handler = (ctx) => [{ elemType: ctx.elemType(0), shape: poolShape(ctx) }];
