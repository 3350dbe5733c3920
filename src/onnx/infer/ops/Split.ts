import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { expectLength } from '../rules.js';

/** Split: x's dim at axis cut into the `split` sizes (attribute before opset 13, input 1 from it), else equal parts (opset 18 num_outputs: the last smaller). */
export const Split: Handler = (ctx) => {
  const x = ctx.type(0);
  const count = ctx.node.outputs.length;
  const shape = x?.shape;
  if (!shape) return Array(count).fill(x && { elemType: x.elemType });
  const axis = ctx.axis(ctx.node.getInt('axis', 0), shape.length);
  const d = shape[axis];
  let sizes: Dim[];
  const given = ctx.opset >= 13 ? ctx.has(1) && ctx.elements(1) : ctx.node.getInts('split', []).length > 0 && ctx.node.getInts('split');
  if (given) sizes = [...given];
  else if (ctx.opset >= 13 && ctx.has(1)) sizes = Array(count).fill(null);
  else if (typeof d !== 'number') sizes = Array(count).fill(null);
  else if (ctx.opset >= 18) {
    const part = Math.ceil(d / count);
    sizes = Array.from({ length: count }, (_, i) => (i < count - 1 ? part : d - part * (count - 1)));
  } else {
    if (d % count !== 0) ctx.fail(`${ctx.describe(0)} cannot be split into ${count} equal parts along axis ${axis}`);
    sizes = Array(count).fill(d / count);
  }
  expectLength(ctx, 'split', sizes, count);
  if (typeof d === 'number' && sizes.every((s) => typeof s === 'number') && (sizes as number[]).reduce((a, b) => a + b, 0) !== d) {
    ctx.fail(`split sizes ${JSON.stringify(sizes)} do not add up to ${d}, dimension ${axis} of ${ctx.describe(0)}`);
  }
  return sizes.map((s) => ({ elemType: x.elemType, shape: shape.map((e, i) => (i === axis ? s : e)) }));
};
