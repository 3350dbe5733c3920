import type { Value } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/**
 * Clip (ReLU6 and friends): dX = dY where min < X < max, else 0 (bounds excluded, as PyTorch's hardtanh_backward).
 * The bounds are inputs 1 and 2 (opset ≥ 11; either may be omitted) or, in older models, the `min`/`max`
 * attributes. The bounds themselves get no gradient.
 */
export const Clip: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const x = node.input(0);
    const bound = (i: number, name: string): Value | undefined => {
      const v = node.inputs[i];
      if (v) return v;
      const a = node.getAttr(name);
      return a?.type === 'float' ? em.f32(a.value) : undefined;
    };
    const lo = bound(1, 'min');
    const hi = bound(2, 'max');
    const conds: Value[] = [];
    if (lo) conds.push(em.op('Greater', [x, lo]));
    if (hi) conds.push(em.op('Less', [x, hi]));
    if (!conds.length) return [dy()];
    const inside = conds.length === 2 ? em.op('And', conds) : conds[0]!;
    return [em.op('Where', [inside, dy()!, em.f32(0)])];
  },
};
