import type { Handler } from '../context.js';
import { convShape } from '../rules.js';

/** ConvInteger: Conv's shape over x and w (inputs 0 and 1), accumulated in int32. */
export const ConvInteger: Handler = (ctx) => [{ elemType: 'int32', shape: convShape(ctx, 0, 1) }];
