import type { Handler } from '../context.js';
import { conflicts } from '../dims.js';

/** BatchNormalization: y has x's type and shape; the optional statistics outputs are [C], typed like mean (input 3). */
export const BatchNormalization: Handler = (ctx) => {
  const x = ctx.type(0);
  const scale = ctx.shape(1);
  if (x?.shape && scale?.length === 1 && x.shape.length > 1 && conflicts(x.shape[1], scale[0])) {
    ctx.fail(`${ctx.describe(0)} has ${x.shape[1]} channels but scale ${ctx.describe(1)} has ${scale[0]}`);
  }
  const stats = ctx.type(3) ?? ctx.type(1);
  return [x && { elemType: x.elemType, shape: x.shape }, stats, stats, stats, stats];
};
