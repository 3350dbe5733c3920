import { attr } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/** Split: dX = Concat of the outputs' gradients along the axis, zeros for outputs no gradient flows into. The sizes input gets none. */
export const Split: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const rank = em.rank(node.input(0));
    const a = node.getInt('axis', 0);
    const parts = node.outputs.map((o, i) => dy(i) ?? em.zerosLike(o ?? em.fail(`output ${i} is omitted`)));
    return [em.op('Concat', parts, { axis: attr.int(a < 0 ? a + rank : a) })];
  },
};
