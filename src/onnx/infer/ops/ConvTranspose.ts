import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { conflicts, scaleDim } from '../dims.js';
import { expectLength } from '../rules.js';

/** ConvTranspose: [N, w[1]·group, ...] sized by output_shape, else stride·(d−1) + output_padding + (k−1)·dilation + 1 − pads (auto_pad SAME: d·stride). */
export const ConvTranspose: Handler = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  const elemType = ctx.elemType(0);
  if (!x || x.length < 3) return [{ elemType }];
  const n = x.length - 2;
  const node = ctx.node;
  if (w && conflicts(x[1], w[0])) ctx.fail(`${ctx.describe(0)} has ${x[1]} channels but weight ${ctx.describe(1)} expects ${w[0]}`);
  const channels = w ? scaleDim(w[1], node.getInt('group', 1)) : null;
  const outputShape = node.getInts('output_shape', []);
  if (outputShape.length) return [{ elemType, shape: [x[0], channels, ...outputShape.slice(-n)] }];
  const given = node.getInts('kernel_shape', []);
  const kernel: readonly Dim[] = given.length ? given : (w?.slice(2) ?? Array(n).fill(null));
  const strides = node.getInts('strides', Array(n).fill(1));
  const dilations = node.getInts('dilations', Array(n).fill(1));
  const outputPadding = node.getInts('output_padding', Array(n).fill(0));
  const autoPad = node.getString('auto_pad', 'NOTSET') || 'NOTSET';
  const pads = autoPad === 'NOTSET' ? node.getInts('pads', Array(2 * n).fill(0)) : Array(2 * n).fill(0);
  for (const [what, list, len] of [['kernel_shape', kernel, n], ['strides', strides, n], ['dilations', dilations, n], ['output_padding', outputPadding, n], ['pads', pads, 2 * n]] as const) {
    expectLength(ctx, what, list, len);
  }
  const spatial = x.slice(2).map((d, i): Dim => {
    const k = kernel[i];
    if (typeof d !== 'number' || typeof k !== 'number') return null;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * strides[i];
    return strides[i] * (d - 1) + outputPadding[i] + (k - 1) * dilations[i] + 1 - pads[i] - pads[i + n];
  });
  return [{ elemType, shape: [x[0], channels, ...spatial] }];
};
