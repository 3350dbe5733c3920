import type { Handler } from '../context.js';
import { conflicts } from '../dims.js';

/** Gemm: op(A) [M, K] · op(B) [K, N] (+ C) → [M, N] with A's type, op transposing when transA / transB is set. */
export const Gemm: Handler = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  const elemType = ctx.elemType(0);
  if (!a || !b) return [{ elemType }];
  if (a.length !== 2 || b.length !== 2) ctx.fail(`Gemm needs 2-D A and B but has ${ctx.describe(0)} and ${ctx.describe(1)}`);
  const transA = ctx.node.getInt('transA', 0) !== 0;
  const transB = ctx.node.getInt('transB', 0) !== 0;
  const [m, ka] = transA ? [a[1], a[0]] : [a[0], a[1]];
  const [kb, n] = transB ? [b[1], b[0]] : [b[0], b[1]];
  if (conflicts(ka, kb)) {
    ctx.fail(`inner dimensions differ: A ${ctx.describe(0)}${transA ? ' (transA)' : ''} has K = ${ka} but B ${ctx.describe(1)}${transB ? ' (transB)' : ''} has K = ${kb}`);
  }
  return [{ elemType, shape: [m, n] }];
};
