import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';

/** Unsqueeze: inserts 1s at the listed axes of the output (attribute before opset 13, input 1 from it). */
export const Unsqueeze: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  const elemType = x?.elemType;
  const axes = ctx.opset >= 13 ? ctx.numbers(1) : ctx.node.getInts('axes');
  if (!shape) return [{ elemType }];
  if (!axes) {
    const count = ctx.elements(1)?.length;
    return [{ elemType, shape: count === undefined ? undefined : Array(shape.length + count).fill(null) }];
  }
  const rank = shape.length + axes.length;
  const ones = new Set(axes.map((a) => ctx.axis(a, rank)));
  if (ones.size !== axes.length) ctx.fail(`axes ${JSON.stringify(axes)} repeat an axis`);
  const rest = [...shape];
  const out = Array.from({ length: rank }, (_, i): Dim => (ones.has(i) ? 1 : rest.shift()!));
  return [{ elemType, shape: out, value: rank <= 1 ? ctx.value(0) : undefined }];
};
