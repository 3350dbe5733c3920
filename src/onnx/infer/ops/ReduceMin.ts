import type { Handler } from '../context.js';
import { reduce } from '../rules.js';

/** ReduceMin: x's shape with axes reduced (to 1 with keepdims); axes is an input from opset 18. */
export const ReduceMin: Handler = (ctx) => reduce(ctx, 18);
