import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';

/** Gather: data's dims before axis, then indices' dims, then data's after axis; known elements are gathered. */
export const Gather: Handler = (ctx) => {
  const data = ctx.type(0);
  const shape = data?.shape;
  const indices = ctx.shape(1);
  const elemType = data?.elemType;
  if (!shape || !indices) return [{ elemType }];
  const axis = ctx.axis(ctx.node.getInt('axis', 0), shape.length);
  const out = [...shape.slice(0, axis), ...indices, ...shape.slice(axis + 1)];
  const value = ctx.value(0);
  const picks = ctx.numbers(1);
  let gathered: Dim[] | undefined;
  if (value && picks && shape.length === 1 && out.length <= 1) {
    gathered = picks.map((i) => {
      if (i < -value.length || i >= value.length) ctx.fail(`index ${i} is out of range for ${ctx.describe(0)}`);
      return value[i < 0 ? i + value.length : i];
    });
  }
  return [{ elemType, shape: out, value: gathered }];
};
