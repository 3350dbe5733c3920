import type { Handler } from '../context.js';
import { matmulShape } from '../rules.js';

/** QLinearMatMul: MatMul's shape over a (input 0) and b (input 3), with y_zero_point's type (input 7). */
export const QLinearMatMul: Handler = (ctx) => [{ elemType: ctx.elemType(7) ?? ctx.elemType(0), shape: matmulShape(ctx, 0, 3) }];
