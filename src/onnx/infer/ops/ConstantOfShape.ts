import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { MAX_VALUE_ELEMENTS, tensorElements } from '../context.js';

/** ConstantOfShape: shaped by the input's elements, typed by the `value` tensor (float32 zero by default). */
export const ConstantOfShape: Handler = (ctx) => {
  const t = ctx.node.getTensor('value');
  const shape = ctx.elements(0);
  const fill = t ? tensorElements(t)?.[0] : 0;
  let value: Dim[] | undefined;
  if (fill !== undefined && shape?.length === 0) value = [fill];
  if (fill !== undefined && shape?.length === 1 && typeof shape[0] === 'number' && shape[0] <= MAX_VALUE_ELEMENTS) value = Array(shape[0]).fill(fill);
  return [{ elemType: t?.dtype ?? 'float32', shape, value }];
};
