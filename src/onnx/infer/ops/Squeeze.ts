import type { Handler } from '../context.js';

/** Squeeze: drops the listed axes, which must be 1 (attribute before opset 13, input 1 from it); without axes, every 1. */
export const Squeeze: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  const elemType = x?.elemType;
  const fromInput = ctx.opset >= 13;
  const axes = fromInput ? (ctx.has(1) ? ctx.numbers(1) : []) : ctx.node.getInts('axes', []);
  if (!shape) return [{ elemType }];
  if (!axes) {
    const count = ctx.elements(1)?.length;
    return [{ elemType, shape: count === undefined ? undefined : Array(shape.length - count).fill(null) }];
  }
  if (axes.length === 0) {
    // which dims are 1 is known only when every dim is fixed
    if (!shape.every((d) => typeof d === 'number')) return [{ elemType }];
    return [{ elemType, shape: shape.filter((d) => d !== 1), value: ctx.value(0) }];
  }
  const drop = new Set(axes.map((a) => ctx.axis(a, shape.length)));
  for (const a of drop) if (typeof shape[a] === 'number' && shape[a] !== 1) ctx.fail(`cannot squeeze axis ${a} of ${ctx.describe(0)}: it is not 1`);
  return [{ elemType, shape: shape.filter((_, i) => !drop.has(i)), value: ctx.value(0) }];
};
