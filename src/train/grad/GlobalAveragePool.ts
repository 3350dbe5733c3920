import { Tensor } from '../../onnx/tensor.js';
import type { GradRule } from './table.js';

/** GlobalAveragePool: dX = dY·(1/(H·W…)), broadcast over the spatial dims by one Mul with a [1, 1, H, W…] constant. Needs fixed spatial dims. */
export const GlobalAveragePool: GradRule = {
  differentiable: () => [0],
  check: (node, em) => {
    const xs = em.shape(node.input(0));
    return xs.slice(2).every((d) => typeof d === 'number') ? undefined : `needs fixed spatial dims, but "${node.input(0).name}" has [${xs.join(', ')}]`;
  },
  backward: ({ node, em, dy }) => {
    const xs = em.shape(node.input(0));
    const spatial = xs.slice(2).map((d) => (typeof d === 'number' ? d : em.fail(`needs fixed spatial dims, but "${node.input(0).name}" has [${xs.join(', ')}]`)));
    const count = spatial.reduce((p, d) => p * d, 1);
    const spread = em.constant(Tensor.from('float32', [1, 1, ...spatial], new Float32Array(count).fill(1 / count)), 'train/mean_spread');
    return [em.mul(dy()!, spread)];
  },
};
