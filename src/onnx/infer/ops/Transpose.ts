import type { Handler } from '../context.js';
import { expectLength } from '../rules.js';

/** Transpose: y.shape[i] = x.shape[perm[i]], perm reversing the axes by default. */
export const Transpose: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  if (!shape) return [x && { elemType: x.elemType }];
  const perm = ctx.node.getInts('perm', shape.map((_, i) => shape.length - 1 - i));
  expectLength(ctx, 'perm', perm, shape.length);
  return [{ elemType: x.elemType, shape: perm.map((p) => shape[ctx.axis(p, shape.length, 'perm entry')]) }];
};
