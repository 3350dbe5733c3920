import type { Handler } from '../context.js';
import { matmulShape } from '../rules.js';

/** MatMul: numpy matmul, [..., M, K] · [..., K, N] → [...broadcast, M, N], with a's type. */
export const MatMul: Handler = (ctx) => [{ elemType: ctx.elemType(0), shape: matmulShape(ctx, 0, 1) }];
