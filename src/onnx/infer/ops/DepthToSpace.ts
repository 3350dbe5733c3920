import type { Handler } from '../context.js';
import { scaleDim } from '../dims.js';

/** DepthToSpace: [N, C, H, W] → [N, C/b², H·b, W·b] for blocksize b. */
export const DepthToSpace: Handler = (ctx) => {
  const x = ctx.type(0);
  const b = ctx.node.getInt('blocksize');
  if (!x?.shape || x.shape.length !== 4) return [{ elemType: x?.elemType }];
  const [n, c, h, w] = x.shape;
  if (typeof c === 'number' && c % (b * b) !== 0) ctx.fail(`${ctx.describe(0)} has ${c} channels, not a multiple of blocksize² = ${b * b}`);
  return [{ elemType: x.elemType, shape: [n, typeof c === 'number' ? c / (b * b) : null, scaleDim(h, b), scaleDim(w, b)] }];
};
