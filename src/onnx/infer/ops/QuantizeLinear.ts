import { dtypeFromCode } from '../../dtype.js';
import type { Handler } from '../context.js';

/** QuantizeLinear: x's shape, with y_zero_point's element type (input 2), else output_dtype (opset 21), else uint8. */
export const QuantizeLinear: Handler = (ctx) => {
  const attr = ctx.node.getInt('output_dtype', 0);
  const elemType = ctx.has(2) ? ctx.elemType(2) : attr ? dtypeFromCode(attr) : 'uint8';
  return [{ elemType, shape: ctx.shape(0) }];
};
