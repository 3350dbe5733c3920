import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { addDim } from '../dims.js';
import { expectLength } from '../rules.js';

/** Pad: d + pads[begin] + pads[end] per axis (pads an attribute before opset 11, input 1 from it; opset 18 adds axes, input 3). */
export const Pad: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  const pads = ctx.opset >= 11 ? ctx.numbers(1) : ctx.node.getInts(ctx.opset >= 2 ? 'pads' : 'paddings');
  if (!shape) return [{ elemType: x?.elemType }];
  const given = ctx.opset >= 18 && ctx.has(3) ? ctx.numbers(3) : shape.map((_, i) => i);
  const axes = given?.map((a) => ctx.axis(a, shape.length));
  if (!pads || !axes) return [{ elemType: x.elemType, shape: shape.map((d, i) => (axes && !axes.includes(i) ? d : null)) }];
  expectLength(ctx, 'pads', pads, 2 * axes.length);
  const out: Dim[] = [...shape];
  axes.forEach((a, j) => (out[a] = addDim(shape[a], pads[j] + pads[j + axes.length])));
  return [{ elemType: x.elemType, shape: out }];
};
