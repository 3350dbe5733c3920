/**
 * Statistics recalibration after channel pruning: the folded-model form of "re-estimate the BatchNormalization
 * statistics after pruning".
 *
 * Removing channels changes what every later layer computes: a Conv that now sums over half its inputs has output
 * channels with another mean and variance than the network after it was trained for. In a model with
 * BatchNormalization one re-estimates the running statistics on data and keeps gamma and beta. Exported models
 * usually have BatchNormalization folded into the Conv, so the same is done on the Conv itself: for each output
 * channel c, with mean μ and standard deviation σ of the original model's channel (measured before pruning) and μ′,
 * σ′ of the pruned model's (measured after, on the same data),
 *
 *   y ← (y − μ′) · σ/σ′ + μ,   i.e.  W[c] ← W[c] · σ/σ′,  b[c] ← (b[c] − μ′) · σ/σ′ + μ
 *
 * which is BN(y) with running statistics (μ′, σ′²), gamma σ and beta μ. The Convs are corrected in graph order,
 * each measured after the ones before it were corrected, so each sees the corrected inputs it will see at run time.
 *
 * Cases:
 * 1. Conv (any group, depthwise included) with constant float32 weight read by it alone: corrected.
 * 2. A channel whose pruned σ′ is (almost) zero, or a ratio σ/σ′ outside [1/8, 8]: only its mean is moved (ratio 1),
 *    so a dead or nearly dead channel is not blown up.
 * 3. Anything else (shared or non-constant weights, other ops, a Conv whose output is not [N, C, …]): left.
 */
import { datasetFeeds } from '../eval/accuracy.js';
import type { Dataset } from '../eval/datasets.js';
import type { Model, Node } from '../onnx/ir.js';
import { Runner, type ExecutionProvider } from '../onnx/runner.js';
import { Tensor } from '../onnx/tensor.js';
import { constantInput, setConstantInput } from './common.js';

/** Per-channel mean and standard deviation of a Conv's output. */
export interface ChannelMoments {
  mean: Float64Array;
  std: Float64Array;
}

/** The Convs recalibration can correct (case 1). */
export function recalibrableConvs(model: Model): Node[] {
  return model.graph.nodes.filter((n) => {
    if (n.opType !== 'Conv' || n.domain !== '' || !n.outputs[0]) return false;
    const w = n.inputs[1];
    const t = w ? constantInput(n, 1) : undefined;
    return !!t && t.dtype === 'float32' && w!.uses.length === 1 && (!n.inputs[2] || constantInput(n, 2)?.dtype === 'float32');
  });
}

/**
 * Per-channel moments of the outputs of `nodes` over `samples` of `data`, one run of the model.
 *
 * @example
 * ```ts
 * const before = await channelMoments(model, recalibrableConvs(model), data, 256);
 * ```
 */
export async function channelMoments(model: Model, nodes: readonly Node[], data: Dataset, samples: number): Promise<Map<Node, ChannelMoments>> {
  const stats = await outputMoments(model, data, nodes.map((n) => n.outputs[0]!.name), samples);
  const out = new Map<Node, ChannelMoments>();
  nodes.forEach((node, i) => {
    const m = stats[i];
    if (m) out.set(node, { mean: m.mean, std: m.variance.map((v) => Math.sqrt(v)) });
  });
  return out;
}

/**
 * Per-channel mean and variance (channels on `axes[i]`, default 1) of the named values — graph inputs too — over
 * `samples` of `data`, in one run of the model; undefined for a value without that axis. Shared by recalibration,
 * fine-tuning's BatchNormalization insertion and the activation ranking of channel pruning.
 */
export async function outputMoments(
  model: Model,
  data: Dataset,
  names: readonly string[],
  samples: number,
  options: { ep?: ExecutionProvider; threads?: number; axes?: readonly number[]; batchSize?: number } = {},
): Promise<({ mean: Float64Array; variance: Float64Array } | undefined)[]> {
  if (!names.length) return [];
  const inputs = new Set(model.graph.inputs.map((v) => v.name));
  // 'extended', not 'all': onnxruntime 1.30 crashes (SIGSEGV) when an intermediate Conv output is fetched under the
  // NCHWc layout transforms of 'all' in some shapes (seen: 45 channels of a 30%-pruned ResNet-8); same values
  const runner = await Runner.create(model, {
    extraOutputs: names.filter((n) => !inputs.has(n) && !model.graph.outputs.some((o) => o.name === n)),
    graphOptimizationLevel: 'extended',
    ...(options.ep ? { ep: options.ep } : {}),
    ...(options.threads ? { threads: options.threads } : {}),
  });
  const acc = names.map(() => ({ s: new Float64Array(0), q: new Float64Array(0), n: 0 }));
  try {
    const fetched = names.filter((n) => !inputs.has(n));
    for await (const { feeds, take, rows } of datasetFeeds(runner, data, { model, batchSize: options.batchSize ?? 64, limit: samples })) {
      const res = fetched.length ? await runner.run(feeds, fetched) : {};
      for (const [i, name] of names.entries()) {
        const t = res[name] ?? feeds[name];
        const axis = options.axes?.[i] ?? 1;
        if (!t || t.dims.length <= axis) continue;
        const c = t.dims[axis]!;
        const inner = t.dims.slice(axis + 1).reduce((x, y) => x * y, 1);
        const a = acc[i]!;
        if (!a.s.length) [a.s, a.q] = [new Float64Array(c), new Float64Array(c)];
        const d = t.data as Float32Array;
        // rows past `take` pad a fixed batch: skip them
        const end = Math.round((d.length * take) / rows);
        for (let j = 0; j < end; j++) {
          const ch = Math.floor(j / inner) % c;
          a.s[ch]! += d[j]!;
          a.q[ch]! += d[j]! * d[j]!;
        }
        a.n += end / c;
      }
    }
  } finally {
    await runner.release();
  }
  return acc.map(({ s, q, n }) => {
    if (!s.length) return undefined;
    const mean = s.map((x) => x / Math.max(n, 1));
    return { mean, variance: q.map((x, k) => Math.max(0, x / Math.max(n, 1) - mean[k]! * mean[k]!)) };
  });
}

/**
 * Corrects, in place and in graph order, every Conv of the pruned `model` that has `target` moments so that its
 * output channels get them back (see the module comment). `kept` gives, per Conv whose output channels were
 * removed, the original index of each remaining channel. Returns how many Convs were corrected.
 *
 * @example
 * ```ts
 * const target = await channelMoments(model, recalibrableConvs(model), data, 256);
 * // … prune channels of `model` in place, recording kept channels per Conv …
 * await recalibrate(model, target, kept, data, 256);
 * ```
 */
export async function recalibrate(model: Model, target: ReadonlyMap<Node, ChannelMoments>, kept: ReadonlyMap<Node, readonly number[]>, data: Dataset, samples: number): Promise<number> {
  let corrected = 0;
  for (const node of recalibrableConvs(model)) {
    const t = target.get(node);
    if (!t) continue;
    const now = (await channelMoments(model, [node], data, samples)).get(node);
    if (!now) continue;
    const k = kept.get(node);
    const C = now.mean.length;
    if ((k ? k.length : t.mean.length) !== C) continue;
    const W = constantInput(node, 1)!;
    const per = W.size / W.dims[0]!;
    if (W.dims[0] !== C) continue;
    const w = Float32Array.from(W.data<Float32Array>());
    const B = node.inputs[2] ? constantInput(node, 2)! : undefined;
    const b = B ? Float32Array.from(B.data<Float32Array>()) : new Float32Array(C);
    for (let c = 0; c < C; c++) {
      const o = k ? k[c]! : c;
      const [mu, sd] = [t.mean[o]!, t.std[o]!];
      const [mu1, sd1] = [now.mean[c]!, now.std[c]!];
      let ratio = sd1 > 1e-6 ? sd / sd1 : 1;
      if (!(ratio >= 1 / 8 && ratio <= 8)) ratio = 1; // case 2
      for (let j = c * per; j < (c + 1) * per; j++) w[j]! *= ratio;
      b[c] = (b[c]! - mu1) * ratio + mu;
    }
    setConstantInput(node, 1, Tensor.from('float32', W.dims, w));
    if (B) setConstantInput(node, 2, Tensor.from('float32', B.dims, b));
    else node.setInput(2, model.graph.addInitializer(model.graph.uniqueName(`${node.name || 'conv'}.bias`), Tensor.from('float32', [C], b)));
    corrected++;
  }
  return corrected;
}
