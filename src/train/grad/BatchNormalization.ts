import type { Value } from '../../onnx/ir.js';
import type { GradRule } from './table.js';

/**
 * BatchNormalization over [N, C, …], reducing over every axis but the channels (N·spatial elements each).
 *
 * Training mode (the forward hook): the node keeps running in onnxruntime's inference kernel, but it is fed the batch
 * mean and the (biased) batch variance instead of the running statistics; the running statistics become buffers,
 * updated as PyTorch does: new = momentum·old + (1 − momentum)·batch, with the unbiased variance (N/(N−1)).
 * ONNX's `momentum` is the weight of the old value (0.9 is PyTorch's 0.1). Backward, with x̂ = (x − μ)·invstd and
 * k = scale·invstd:
 *
 *     dscale = Σ dY·x̂,   dB = Σ dY,   dX = k·(dY − dB/N − x̂·dscale/N)
 *
 * Frozen mode: the running statistics are constants, dX = k·dY, and dscale, dB as above with them.
 */
export const BatchNormalization: GradRule = {
  differentiable: () => [0, 1, 2],
  check: (node, em) => {
    if (node.outputs.slice(1).some((o) => o && (o.uses.length || o.isGraphOutput))) return 'its running-statistics outputs are read (export the model in inference mode)';
    em.staticDims(node.input(1), 'the scale');
    em.rank(node.input(0));
    return undefined;
  },
  forward: (ctx) => {
    if (ctx.batchNorm === 'frozen') return undefined;
    const { node, em } = ctx;
    const x = node.input(0);
    const rank = em.rank(x);
    const C = em.staticDims(node.input(1), 'the scale')[0]!;
    const [mean, variance] = [node.input(3), node.input(4)];
    for (const v of [mean, variance]) {
      if (!v.initializer || v.uses.length !== 1 || v.isGraphInput) {
        em.fail(`its running statistic "${v.name}" must be an initializer that only this node reads, to be updated in training mode (use batchNorm: 'frozen', or give each node its own copy)`);
      }
    }
    const momentum = node.getFloat('momentum', 0.9);
    const eps = node.getFloat('epsilon', 1e-5);
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const mu = em.reduce('ReduceMean', x, axes, true);
    const xc = em.sub(x, mu);
    const ss = em.reduce('ReduceSumSquare', xc, axes, true);
    const n = em.div(em.cast(em.op('Size', [x]), 'float32'), em.f32(C));
    const batchVar = em.div(ss, n);
    const muC = em.reshape(mu, [C]);
    node.setInput(3, muC);
    node.setInput(4, em.reshape(batchVar, [C]));
    const invstd = em.op('Reciprocal', [em.op('Sqrt', [em.add(batchVar, em.f32(eps))])]);
    const unbiased = em.reshape(em.div(ss, em.sub(n, em.f32(1))), [C]);
    ctx.buffer(mean, em.add(em.scale(mean, momentum), em.scale(muC, 1 - momentum)));
    ctx.buffer(variance, em.add(em.scale(variance, momentum), em.scale(unbiased, 1 - momentum)));
    return { saved: { xc, invstd, n } };
  },
  backward: ({ node, em, dy, needs, saved }) => {
    const [x, scale] = [node.input(0), node.input(1)];
    const rank = em.rank(x);
    const C = em.staticDims(scale, 'the scale')[0]!;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const bshape = [1, C, ...new Array<number>(rank - 2).fill(1)];
    const g = dy()!;
    const training = saved.n !== undefined;
    let xc: Value | undefined = saved.xc;
    let invstd: Value | undefined = saved.invstd;
    if (!training) {
      const eps = node.getFloat('epsilon', 1e-5);
      invstd = em.reshape(em.op('Reciprocal', [em.op('Sqrt', [em.add(node.input(4), em.f32(eps))])]), bshape);
      if (needs(1)) xc = em.sub(x, em.reshape(node.input(3), bshape));
    }
    const sumDy = needs(2) || (training && needs(0)) ? em.reduceSum(g, axes, true) : undefined;
    const sumDyXc = needs(1) || (training && needs(0)) ? em.reduceSum(em.mul(g, xc!), axes, true) : undefined;
    let dX: Value | null = null;
    if (needs(0)) {
      const k = em.mul(em.reshape(scale, bshape), invstd!);
      if (!training) dX = em.mul(g, k);
      else {
        const invN = em.op('Reciprocal', [saved.n!]);
        const b = em.mul(em.mul(k, sumDy!), invN);
        const c = em.mul(em.mul(em.mul(k, em.mul(invstd!, invstd!)), sumDyXc!), invN);
        dX = em.sub(em.mul(g, k), em.add(em.mul(xc!, c), b));
      }
    }
    return [dX, needs(1) ? em.reshape(em.mul(sumDyXc!, invstd!), [C]) : null, needs(2) ? em.reshape(sumDy!, [C]) : null];
  },
};
