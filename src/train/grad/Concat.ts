import { attr, type Value } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/** Concat: dY split back along the axis into pieces the sizes of the inputs (fixed sizes, or read at run time). */
export const Concat: GradRule = {
  differentiable: (node) => node.inputs.map((_, i) => i),
  backward: ({ node, em, dy }) => {
    const rank = em.rank(node.output(0));
    const a = node.getInt('axis');
    const axis = a < 0 ? a + rank : a;
    const inputs = node.inputs.map((v, i) => v ?? em.fail(`input ${i} is omitted`));
    const dims = inputs.map((v) => em.shape(v)[axis]);
    let sizes: Value;
    if (dims.every((d): d is number => typeof d === 'number')) sizes = em.i64(dims);
    else {
      const parts = inputs.map((v, i) => {
        const d = dims[i];
        return typeof d === 'number' ? em.i64([d]) : em.op('Gather', [em.shapeOf(v), em.i64([axis])], { axis: attr.int(0) });
      });
      sizes = em.op('Concat', parts, { axis: attr.int(0) });
    }
    return em.node('Split', [dy()!, sizes], { axis: attr.int(axis) }, inputs.length).outputs;
  },
};
