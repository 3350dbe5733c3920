import type { Handler } from '../context.js';

/** TopK: values (x's type) and int64 indices, both x's shape with K along axis (K an attribute before opset 10, input 1 from it). */
export const TopK: Handler = (ctx) => {
  const x = ctx.type(0);
  const k = ctx.opset >= 10 ? (ctx.value(1)?.[0] ?? null) : ctx.node.getInt('k');
  if (!x?.shape) return [{ elemType: x?.elemType }, { elemType: 'int64' }];
  const axis = ctx.axis(ctx.node.getInt('axis', -1), x.shape.length);
  const shape = x.shape.map((d, i) => (i === axis ? k : d));
  return [{ elemType: x.elemType, shape }, { elemType: 'int64', shape }];
};
