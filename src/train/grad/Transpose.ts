import type { GradRule } from './table.js';

/** Transpose: dX = Transpose(dY, inverse permutation) (default perm: reversed axes). */
export const Transpose: GradRule = {
  differentiable: () => [0],
  backward: ({ node, em, dy }) => {
    const rank = em.rank(node.input(0));
    const perm = node.getInts('perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
    const inverse: number[] = [];
    perm.forEach((p, i) => (inverse[p] = i));
    return [em.transpose(dy()!, inverse)];
  },
};
