import { dtypeFromCode } from '../../dtype.js';
import type { Handler } from '../context.js';

/** LayerNormalization: y is x's type and shape; Mean and InvStdDev are x's shape with 1s from axis on, of stash_type (float32). */
export const LayerNormalization: Handler = (ctx) => {
  const x = ctx.type(0);
  const stash = dtypeFromCode(ctx.node.getInt('stash_type', 1));
  if (!x?.shape) return [x && { elemType: x.elemType }, { elemType: stash }, { elemType: stash }];
  const axis = ctx.axis(ctx.node.getInt('axis', -1), x.shape.length);
  const stats = x.shape.map((d, i) => (i < axis ? d : 1));
  return [{ elemType: x.elemType, shape: x.shape }, { elemType: stash, shape: stats }, { elemType: stash, shape: stats }];
};
