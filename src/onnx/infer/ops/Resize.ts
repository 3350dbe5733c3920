import type { Dim } from '../../ir.js';
import type { Handler, InferContext } from '../context.js';
import { expectLength, scaleFloor } from '../rules.js';

/** Resize: `sizes` when given, else ⌊d·scale⌋ in float32 as onnxruntime does (scales: input 1 at opset 10, input 2 from 11 beside sizes 3; opset 18: axes). */
export const Resize: Handler = (ctx) => {
  const x = ctx.type(0);
  const shape = x?.shape;
  const elemType = x?.elemType;
  const scalesAt = ctx.opset >= 11 ? 2 : 1;
  if (!shape) return [{ elemType }];
  const axesAttr = ctx.node.getInts('axes', []);
  const axes = axesAttr.length ? axesAttr.map((a) => ctx.axis(a, shape.length)) : shape.map((_, i) => i);
  const out: Dim[] = [...shape];
  if (ctx.opset >= 11 && given(ctx, 3)) {
    const sizes = ctx.elements(3) ?? Array<Dim>(axes.length).fill(null);
    expectLength(ctx, 'sizes', sizes, axes.length);
    const policy = ctx.node.getString('keep_aspect_ratio_policy', 'stretch');
    if (policy === 'stretch') axes.forEach((a, j) => (out[a] = sizes[j]));
    else {
      const fixed = axes.every((a, j) => typeof shape[a] === 'number' && typeof sizes[j] === 'number');
      const ratios = axes.map((a, j) => (sizes[j] as number) / (shape[a] as number));
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a) => (out[a] = fixed ? Math.round(scale * (shape[a] as number)) : null));
    }
  } else if (given(ctx, scalesAt)) {
    const scales = ctx.numbers(scalesAt);
    if (scales) expectLength(ctx, 'scales', scales, axes.length);
    axes.forEach((a, j) => (out[a] = scales ? scaleFloor(shape[a], scales[j]) : null));
  } else return [{ elemType, shape: shape.map(() => null) }];
  return [{ elemType, shape: out }];
};

/** Whether optional input `i` is given and not an empty tensor (exporters pass empty scales alongside sizes). */
function given(ctx: InferContext, i: number): boolean {
  if (!ctx.has(i)) return false;
  const shape = ctx.shape(i);
  return !(shape?.length === 1 && shape[0] === 0) && ctx.value(i)?.length !== 0;
}
