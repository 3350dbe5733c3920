import type { Handler } from '../context.js';
import { broadcastShapes, formatShape } from '../dims.js';

/** Expand: numpy broadcast of x's shape with the `shape` input's elements (unknown elements broadcast as unknown). */
export const Expand: Handler = (ctx) => {
  const x = ctx.type(0);
  const target = ctx.elements(1);
  if (!x?.shape || !target) return [{ elemType: x?.elemType }];
  const r = broadcastShapes([x.shape, target]);
  if ('conflict' in r) return ctx.fail(`cannot expand ${ctx.describe(0)} to ${formatShape(target)}`);
  return [{ elemType: x.elemType, shape: r.shape }];
};
