import type { Handler } from '../context.js';
import { argReduce } from '../rules.js';

/** ArgMax: int64 indices, x's shape with axis dropped (or 1 with keepdims). */
export const ArgMax: Handler = argReduce;
