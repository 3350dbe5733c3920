import { attr, type Dim, type Value } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/**
 * MatMul (numpy semantics: 1-D operands, broadcast batch dims): dA = dY·Bᵀ, dB = Aᵀ·dY, each summed back over the
 * batch dims it was broadcast along. The common layer case, B a [K, N] weight, is one Gemm for dB (A and dY
 * flattened to rows) instead of a batched MatMul and a ReduceSum.
 */
export const MatMul: GradRule = {
  differentiable: () => [0, 1],
  backward: ({ node, em, dy, needs }) => {
    const [a, b] = [node.input(0), node.input(1)];
    const g = dy()!;
    const as = em.shape(a);
    const bs = em.shape(b);
    const ys = em.shape(node.output(0));
    const swap = (v: Value, rank: number) => em.transpose(v, [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2]);
    const [K, N] = [bs[0], bs[1]];
    if (as.length >= 2 && bs.length === 2 && typeof K === 'number' && typeof N === 'number') {
      const dA = !needs(0) ? null : as.length === 2 ? em.op('Gemm', [g, b], { transB: attr.int(1) }) : em.op('MatMul', [g, swap(b, 2)]);
      const dB = !needs(1) ? null : em.op('Gemm', as.length === 2 ? [a, g] : [em.reshape(a, [-1, K]), em.reshape(g, [-1, N])], { transA: attr.int(1) });
      return [dA, dB];
    }
    // general: make both operands at least 2-D, then undo
    let G = g;
    const gs: Dim[] = [...ys];
    const a1 = as.length === 1;
    const b1 = bs.length === 1;
    if (a1) {
      const ax = b1 ? gs.length : gs.length - 1;
      G = em.op('Unsqueeze', [G, em.i64([ax])]);
      gs.splice(ax, 0, 1);
    }
    if (b1) {
      G = em.op('Unsqueeze', [G, em.i64([gs.length])]);
      gs.push(1);
    }
    const A = a1 ? em.op('Unsqueeze', [a, em.i64([0])]) : a;
    const aS: Dim[] = a1 ? [1, as[0]!] : [...as];
    const B = b1 ? em.op('Unsqueeze', [b, em.i64([1])]) : b;
    const bS: Dim[] = b1 ? [bs[0]!, 1] : [...bs];
    let dA: Value | null = null;
    let dB: Value | null = null;
    if (needs(0)) {
      const full = em.op('MatMul', [G, swap(B, bS.length)]);
      dA = em.reduceTo(full, [...gs.slice(0, -1), aS.at(-1)!], A, aS);
      if (a1) dA = em.reshape(dA, em.shapeOf(a));
    }
    if (needs(1)) {
      const full = em.op('MatMul', [swap(A, aS.length), G]);
      dB = em.reduceTo(full, [...gs.slice(0, -2), bS.at(-2)!, gs.at(-1)!], B, bS);
      if (b1) dB = em.reshape(dB, em.shapeOf(b));
    }
    return [dA, dB];
  },
};
