import type { Handler } from '../context.js';

/** Dropout: y has x's type and shape; the mask has x's shape, bool from opset 10 (x's type before). */
export const Dropout: Handler = (ctx) => {
  const x = ctx.type(0);
  return [x && { elemType: x.elemType, shape: x.shape }, x && { elemType: ctx.opset >= 10 ? 'bool' : x.elemType, shape: x.shape }];
};
