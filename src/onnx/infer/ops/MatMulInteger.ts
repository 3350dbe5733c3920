import type { Handler } from '../context.js';
import { matmulShape } from '../rules.js';

/** MatMulInteger: MatMul's shape over a and b (inputs 0 and 1), accumulated in int32. */
export const MatMulInteger: Handler = (ctx) => [{ elemType: 'int32', shape: matmulShape(ctx, 0, 1) }];
