import type { Handler } from '../context.js';
import { expectLength, scaleFloor } from '../rules.js';

/** Upsample: ⌊d·scale⌋ per axis in float32 (scales an attribute before opset 9, input 1 from it). */
export const Upsample: Handler = (ctx) => {
  const x = ctx.type(0);
  const scales = ctx.opset >= 9 ? ctx.numbers(1) : ctx.node.getFloats('scales');
  if (!x?.shape) return [{ elemType: x?.elemType }];
  if (!scales) return [{ elemType: x.elemType, shape: x.shape.map(() => null) }];
  expectLength(ctx, 'scales', scales, x.shape.length);
  return [{ elemType: x.elemType, shape: x.shape.map((d, i) => scaleFloor(d, scales[i])) }];
};
