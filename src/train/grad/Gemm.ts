import { attr, type Attr, type Value } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/**
 * Gemm, Y = alpha·op(A)·op(B) + beta·C:
 * - dA: alpha·dY·op(B)ᵀ, written as one Gemm on A's layout (transA=1: alpha·op(B)·dYᵀ);
 * - dB: alpha·op(A)ᵀ·dY, on B's layout (transB=1: alpha·dYᵀ·op(A));
 * - dC: beta·dY summed back to C's shape (C may be a scalar, [N], [1, N], [M, 1] or [M, N]).
 */
export const Gemm: GradRule = {
  differentiable: () => [0, 1, 2],
  backward: ({ node, em, dy, needs }) => {
    const [a, b] = [node.input(0), node.input(1)];
    const g = dy()!;
    const alpha = node.getFloat('alpha', 1);
    const beta = node.getFloat('beta', 1);
    const tA = node.getInt('transA', 0);
    const tB = node.getInt('transB', 0);
    const gemm = (p: Value, q: Value, ta: number, tb: number): Value => {
      const at: Record<string, Attr> = {};
      if (ta) at.transA = attr.int(1);
      if (tb) at.transB = attr.int(1);
      if (alpha !== 1) at.alpha = attr.float(alpha);
      return em.op('Gemm', [p, q], at);
    };
    const c = node.inputs[2];
    return [
      needs(0) ? (tA ? gemm(b, g, tB, 1) : gemm(g, b, 0, tB ? 0 : 1)) : null,
      needs(1) ? (tB ? gemm(g, a, 1, tA) : gemm(a, g, tA ? 0 : 1, 0)) : null,
      c && needs(2) ? em.reduceTo(em.scale(g, beta), em.shape(node.output(0)), c) : null,
    ];
  },
};
