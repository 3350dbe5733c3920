import type { Handler } from '../context.js';

/** DynamicQuantizeLinear: y uint8 of x's shape, with scalar y_scale (float32) and y_zero_point (uint8). */
export const DynamicQuantizeLinear: Handler = (ctx) => [
  { elemType: 'uint8', shape: ctx.shape(0) },
  { elemType: 'float32', shape: [] },
  { elemType: 'uint8', shape: [] },
];
