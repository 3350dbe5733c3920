import type { Handler } from '../context.js';
import { castElements, dtypeAttr } from '../rules.js';

/** Cast: x's shape with the `to` element type (a code; a name before opset 6); known elements are converted. */
export const Cast: Handler = (ctx) => {
  const to = dtypeAttr(ctx, 'to');
  return [{ elemType: to, shape: ctx.shape(0), value: castElements(ctx.value(0), to) }];
};
