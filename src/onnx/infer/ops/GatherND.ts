import type { Handler } from '../context.js';

/** GatherND: indices' dims but the last (k), then data's dims after batch_dims + k, with data's type. */
export const GatherND: Handler = (ctx) => {
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  const elemType = ctx.elemType(0);
  const k = indices?.[indices.length - 1];
  if (!data || !indices || typeof k !== 'number') return [{ elemType }];
  const batchDims = ctx.node.getInt('batch_dims', 0);
  if (batchDims + k > data.length) ctx.fail(`indices ${ctx.describe(1)} index ${k} dims past batch_dims ${batchDims} of ${ctx.describe(0)}`);
  return [{ elemType, shape: [...indices.slice(0, -1), ...data.slice(batchDims + k)] }];
};
