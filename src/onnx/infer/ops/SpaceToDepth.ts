import type { Handler } from '../context.js';
import { scaleDim } from '../dims.js';

/** SpaceToDepth: [N, C, H, W] → [N, C·b², H/b, W/b] for blocksize b. */
export const SpaceToDepth: Handler = (ctx) => {
  const x = ctx.type(0);
  const b = ctx.node.getInt('blocksize');
  if (!x?.shape || x.shape.length !== 4) return [{ elemType: x?.elemType }];
  const [n, c, h, w] = x.shape;
  const down = (d: typeof h) => (typeof d === 'number' ? d / b : b === 1 ? d : null);
  if ([h, w].some((d) => typeof d === 'number' && d % b !== 0)) ctx.fail(`${ctx.describe(0)} is not divisible by blocksize ${b} in height and width`);
  return [{ elemType: x.elemType, shape: [n, scaleDim(c, b * b), down(h), down(w)] }];
};
