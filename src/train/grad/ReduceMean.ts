import type { GradRule } from './table.js';

/**
 * ReduceMean: dX = Expand(dY with the reduced axes kept, shape of X) / (elements per mean). Axes from the attribute
 * (opset < 18) or a constant input (opset ≥ 18); no axes means all, unless `noop_with_empty_axes`.
 */
export const ReduceMean: GradRule = {
  differentiable: () => [0],
  check: (node, em) => (node.inputs[1] && !em.constantOf(node.inputs[1]) ? 'its axes are computed at run time' : undefined),
  backward: ({ node, em, dy }) => {
    const x = node.input(0);
    const xs = em.shape(x);
    const rank = xs.length;
    let axes = node.inputs[1] ? em.constantOf(node.inputs[1])! : node.getInts('axes', []);
    if (!axes.length) {
      if (node.getInt('noop_with_empty_axes', 0)) return [dy()];
      axes = xs.map((_, i) => i);
    }
    axes = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
    let g = dy()!;
    if (!node.getInt('keepdims', 1)) g = em.op('Unsqueeze', [g, em.i64(axes)]);
    const dims = axes.map((a) => xs[a]);
    if (dims.every((d): d is number => typeof d === 'number')) g = em.scale(g, 1 / dims.reduce((p, d) => p * d, 1));
    else g = em.div(g, em.cast(em.div(em.op('Size', [x]), em.op('Size', [node.output(0)])), 'float32'));
    return [em.op('Expand', [g, em.shapeOf(x)])];
  },
};
