import type { Handler } from '../context.js';
import { reduce } from '../rules.js';

/** ReduceSum: x's shape with axes reduced (to 1 with keepdims); axes is an input from opset 13. */
export const ReduceSum: Handler = (ctx) => reduce(ctx, 13);
