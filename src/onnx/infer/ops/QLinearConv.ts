import type { Handler } from '../context.js';
import { convShape } from '../rules.js';

/** QLinearConv: Conv's shape over x (input 0) and w (input 3), with y_zero_point's type (input 7). */
export const QLinearConv: Handler = (ctx) => [{ elemType: ctx.elemType(7) ?? ctx.elemType(0), shape: convShape(ctx, 0, 3) }];
