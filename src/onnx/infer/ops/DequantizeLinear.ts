import { dtypeFromCode } from '../../dtype.js';
import type { Handler } from '../context.js';

/** DequantizeLinear: x's shape; float32 before opset 19, x_scale's element type (input 1) from it (or output_dtype). */
export const DequantizeLinear: Handler = (ctx) => {
  const attr = ctx.node.getInt('output_dtype', 0);
  const elemType = attr ? dtypeFromCode(attr) : ctx.opset >= 19 ? ctx.elemType(1) : 'float32';
  return [{ elemType, shape: ctx.shape(0) }];
};
