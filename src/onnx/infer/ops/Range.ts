import type { Handler } from '../context.js';
import { MAX_VALUE_ELEMENTS } from '../context.js';

/** Range: 1-D of max(⌈(limit − start) / delta⌉, 0) elements of start's type; the length is unknown unless all three are known. */
export const Range: Handler = (ctx) => {
  const elemType = ctx.elemType(0);
  const [start, limit, delta] = [0, 1, 2].map((i) => ctx.numbers(i)?.[0]);
  if (start === undefined || limit === undefined || delta === undefined || delta === 0) return [{ elemType, shape: [null] }];
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  return [{ elemType, shape: [n], value: n <= MAX_VALUE_ELEMENTS ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined }];
};
