import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { sliceBounds, sliceDim } from '../dims.js';

/** Slice: x[start:end:step] along axes (default 0, 1, …), negatives from the end, clamped, INT64_MAX = to the end; inputs from opset 10, attributes before. */
export const Slice: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  const elemType = x?.elemType;
  const inputs = ctx.opset >= 10;
  const starts = inputs ? ctx.numbers(1) : ctx.node.getInts('starts');
  const ends = inputs ? ctx.numbers(2) : ctx.node.getInts('ends');
  const givenAxes = inputs ? (ctx.has(3) ? ctx.numbers(3) : null) : ctx.node.getInts('axes', []).length ? ctx.node.getInts('axes') : null;
  const steps = inputs && ctx.has(4) ? ctx.numbers(4) : undefined;
  if (!shape) return [{ elemType }];
  const count = starts?.length ?? ends?.length ?? ctx.elements(1)?.length;
  const axes = givenAxes === null ? (count === undefined ? undefined : Array.from({ length: count }, (_, i) => i)) : givenAxes;
  if (!starts || !ends || !axes || (inputs && ctx.has(4) && !steps)) {
    // bounds unknown: the sliced axes (all, when those are unknown too) have unknown sizes
    const sliced = axes && new Set(axes.map((a) => ctx.axis(a, shape.length)));
    return [{ elemType, shape: shape.map((d, i) => (sliced && !sliced.has(i) ? d : null)) }];
  }
  if (starts.length !== axes.length || ends.length !== axes.length || (steps && steps.length !== axes.length)) {
    ctx.fail(`starts, ends, axes and steps differ in length (${starts.length}, ${ends.length}, ${axes.length}, ${steps?.length ?? '-'})`);
  }
  const out: Dim[] = [...shape];
  const normalized = axes.map((a) => ctx.axis(a, shape.length));
  normalized.forEach((a, j) => {
    const step = steps?.[j] ?? 1;
    if (step === 0) ctx.fail('a slice step is 0');
    out[a] = sliceDim(shape[a], starts[j], ends[j], step);
  });
  const value = ctx.value(0);
  let sliced: Dim[] | undefined;
  if (value && shape.length === 1 && normalized.length === 1) {
    const step = steps?.[0] ?? 1;
    const [s, e] = sliceBounds(value.length, starts[0], ends[0], step);
    sliced = [];
    for (let i = s; step > 0 ? i < e : i > e; i += step) sliced.push(value[i]);
  }
  return [{ elemType, shape: out, value: sliced }];
};
