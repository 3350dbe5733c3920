import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { formatShape, sumDim, unifyDim } from '../dims.js';

/** Concat: inputs agree on every dim but axis, whose sizes add up; known elements of 1-D inputs are joined. */
export const Concat: Handler = (ctx) => {
  const inputs = ctx.node.inputs.map((_, i) => i).filter((i) => ctx.has(i));
  const elemType = inputs.map((i) => ctx.elemType(i)).find((t) => t !== undefined);
  const shapes = inputs.map((i) => ctx.shape(i));
  const first = shapes.find((s) => s !== undefined);
  if (!first) return [{ elemType }];
  const rank = first.length;
  const axis = ctx.axis(ctx.node.getInt('axis'), rank);
  const out: Dim[] = [...first];
  shapes.forEach((s, k) => {
    if (!s) return;
    if (s.length !== rank) ctx.fail(`${ctx.describe(inputs[k])} has rank ${s.length} but the first input has shape ${formatShape(first)}`);
    s.forEach((d, i) => {
      if (i === axis) return;
      const u = unifyDim(out[i], d);
      out[i] = u === undefined ? ctx.fail(`${ctx.describe(inputs[k])} differs from ${formatShape(first)} in dimension ${i}, which is not the concat axis ${axis}`) : u;
    });
  });
  out[axis] = shapes.every((s) => s !== undefined) ? sumDim(shapes.map((s) => s![axis])) : null;
  const values = inputs.map((i) => ctx.value(i));
  const value = rank === 1 && values.every((v) => v !== undefined) ? values.flatMap((v) => [...v!]) : undefined;
  return [{ elemType, shape: out, value }];
};
