import type { Handler } from '../context.js';
import { reduce } from '../rules.js';

/** ReduceProd: x's shape with axes reduced (to 1 with keepdims); axes is an input from opset 18. */
export const ReduceProd: Handler = (ctx) => reduce(ctx, 18);
