import { attr } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import type { GradRule } from './table.js';

/**
 * Slice (opset ≥ 10: starts, ends, axes, steps as inputs). Two forms:
 * 1. steps all 1, bounds constant and the sliced dims fixed: dX = Pad(dY) with zeros where the slice left elements out;
 * 2. otherwise (any steps, bounds computed at run time): the flat index of every element of X, sliced like X, says
 *    where each element of dY goes: dX = ScatterElements(zeros, Slice(indices), dY), reshaped to X's shape.
 */
export const Slice: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const x = node.input(0);
    const xs = em.shape(x);
    const rank = xs.length;
    const g = dy()!;
    const starts = em.constantOf(node.inputs[1]);
    const ends = em.constantOf(node.inputs[2]);
    const axes = node.inputs[3] ? em.constantOf(node.inputs[3]) : starts?.map((_, i) => i);
    const steps = node.inputs[4] ? em.constantOf(node.inputs[4]) : starts?.map(() => 1);
    if (starts && ends && axes && steps && steps.every((s) => s === 1) && axes.every((a) => typeof xs[a < 0 ? a + rank : a] === 'number')) {
      // (1)
      const pads = new Array<number>(2 * rank).fill(0);
      axes.forEach((a0, j) => {
        const a = a0 < 0 ? a0 + rank : a0;
        const d = xs[a] as number;
        const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
        const s = clamp(starts[j]!);
        const e = Math.max(clamp(ends[j]!), s);
        pads[a] = s;
        pads[a + rank] = d - e;
      });
      return [em.op('Pad', [g, em.i64(pads)])];
    }
    // (2)
    const size = em.op('Size', [x]);
    const index = em.reshape(em.op('Range', [em.i64([0], []), size, em.i64([1], [])]), em.shapeOf(x));
    const picked = em.op('Slice', [index, ...node.inputs.slice(1)]);
    const zeros = em.op('ConstantOfShape', [em.reshape(size, [1])], { value: attr.tensor(Tensor.from('float32', [1], [0])) });
    const flat = em.op('ScatterElements', [zeros, em.reshape(picked, [-1]), em.reshape(g, [-1])], { axis: attr.int(0) });
    return [em.reshape(flat, em.shapeOf(x))];
  },
};
