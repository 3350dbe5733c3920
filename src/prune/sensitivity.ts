/**
 * Sensitivity analysis and per-layer plans. Each prunable layer (magnitude: each prunable weight; channels: each
 * channel group) is pruned alone at several sparsities and the model is measured: top-1 accuracy when the data has
 * labels (`evaluate`), else top-1 agreement with the unpruned model (`compareOutputs`). A plan for a global target
 * then raises, one step at a time, the layer whose next level costs the least accuracy per unit pruned (weights
 * for magnitude, channels for channels), until the target is reached exactly: the last step takes a fraction.
 *
 * `plan: 'uniform'` is the alternative: every layer at the target (magnitude scope 'layer'; channels' default).
 */
import { compareOutputs, evaluate } from '../eval/accuracy.js';
import type { Dataset } from '../eval/datasets.js';
import type { Model } from '../onnx/ir.js';
import type { ExecutionProvider } from '../onnx/runner.js';
import { channelsInPlace, channelsOptions, planChannels, type ChannelsOptions } from './channels.js';
import { copyModel, openData, type DataSource } from './common.js';
import { magnitudeInPlace, magnitudeOptions, selectWeights, type MagnitudeOptions } from './magnitude.js';

/** Options of `analyzeSensitivity`. */
export interface SensitivityOptions {
  method: 'magnitude' | 'channels';
  /** Evaluation data: a dataset descriptor path or a Dataset (labels: top-1; none: agreement with the original). */
  data: DataSource;
  /** Sparsities each layer is tried at (default [0.25, 0.5, 0.75, 0.9]). */
  levels?: number[];
  /** Evaluate on the first `samples` samples (default 512). */
  samples?: number;
  batchSize?: number;
  ep?: ExecutionProvider;
  threads?: number;
  /** The pass's other options (exclude, criterion, score, …); `sparsity` and `layerSparsity` are set here. */
  passOptions?: MagnitudeOptions | ChannelsOptions;
  onProgress?: (done: number, total: number) => void;
}

/** One layer's measurements. */
export interface LayerSensitivity {
  /** The key of the layer in `layerSparsity`: the (first) node reading the weight, or the group's first producer. */
  layer: string;
  opType: string;
  /** What a sparsity counts: weight elements (magnitude) or channels (channels). */
  units: number;
  points: { sparsity: number; score: number }[];
}

/** What `analyzeSensitivity` returns. */
export interface SensitivityResult {
  method: 'magnitude' | 'channels';
  metric: 'top1' | 'agreement';
  /** The unpruned model's score (agreement: 1). */
  baseline: number;
  samples: number;
  layers: LayerSensitivity[];
}

/** A per-layer plan for a global target. */
export interface SensitivityPlan {
  target: number;
  /** Sparsity per layer key, for the pass's `layerSparsity`. */
  layerSparsity: Record<string, number>;
  /** Units pruned / all units (equals the target unless the levels cannot reach it). */
  achieved: number;
  /** Sum of the per-layer drops of the chosen levels (a rough guide: drops do not add up exactly). */
  expectedDrop: number;
}

/**
 * Measures each layer's sensitivity to pruning.
 *
 * @example
 * ```ts
 * const s = await analyzeSensitivity(model, { method: 'magnitude', data: 'fixtures/fmnist-test-256/cnn.json' });
 * s.layers.map((l) => [l.layer, l.points.map((p) => p.score)]);
 * ```
 */
export async function analyzeSensitivity(model: Model, options: SensitivityOptions): Promise<SensitivityResult> {
  const levels = [...new Set(options.levels ?? [0.25, 0.5, 0.75, 0.9])].sort((a, b) => a - b);
  const samples = options.samples ?? 512;
  const data: Dataset = await openData(options.data, model);
  const base = options.passOptions ?? {};
  const metric: SensitivityResult['metric'] = data.hasLabels ? 'top1' : 'agreement';
  const run = { limit: samples, batchSize: options.batchSize ?? 64, ep: options.ep, threads: options.threads };
  const score = async (m: Model) => (metric === 'top1' ? (await evaluate(m, data, run)).top1 : (await compareOutputs(m, model, data, run)).top1Agreement);
  const layers: LayerSensitivity[] = [];
  if (options.method === 'magnitude') {
    const o = magnitudeOptions.parse({ ...base, sparsity: 0 });
    for (const w of selectWeights(model, o, [])) layers.push({ layer: w.nodes[0]!.name, opType: w.opType, units: w.value.initializer!.size, points: [] });
  } else {
    for (const g of await planChannels(model, { ...(base as ChannelsOptions), sparsity: 0 })) {
      if (!g.frozen && g.producers[0]) layers.push({ layer: g.producers[0], opType: 'channels', units: g.channels, points: [] });
    }
  }
  const total = layers.length * levels.length + 1;
  let done = 0;
  const baseline = metric === 'top1' ? await score(model) : 1;
  options.onProgress?.(++done, total);
  for (const l of layers) {
    for (const s of levels) {
      const copy = copyModel(model);
      const pruned =
        options.method === 'magnitude'
          ? (await magnitudeInPlace(copy, magnitudeOptions.parse({ ...base, sparsity: 0, layerSparsity: { [l.layer]: s } }))).model
          : (await channelsInPlace(copy, channelsOptions.parse({ ...base, sparsity: 0, layerSparsity: { [l.layer]: s } }))).model;
      l.points.push({ sparsity: s, score: await score(pruned) });
      options.onProgress?.(++done, total);
    }
  }
  return { method: options.method, metric, baseline, samples: Math.min(samples, data.size), layers };
}

/** Units pruned at sparsity s: weights round(s·n), channels floor(s·C) (at most C − 1). */
function amount(method: SensitivityResult['method'], units: number, s: number): number {
  return method === 'magnitude' ? Math.round(s * units) : Math.min(units - 1, Math.floor(s * units + 1e-9));
}

/**
 * A per-layer plan reaching `target` (a fraction of all units) at the least measured accuracy cost.
 *
 * @example
 * ```ts
 * const { layerSparsity } = planFromSensitivity(await analyzeSensitivity(model, opts), 0.8);
 * await pruneMagnitude(model, { sparsity: 0.8, layerSparsity });
 * ```
 */
export function planFromSensitivity(result: SensitivityResult, target: number): SensitivityPlan {
  const { layers, method } = result;
  // drop at each level, made monotonic (a measured gain at a higher level does not make it free)
  const steps = layers.map((l) => {
    let worst = 0;
    return [{ sparsity: 0, drop: 0 }, ...l.points.map((p) => ({ sparsity: p.sparsity, drop: (worst = Math.max(worst, result.baseline - p.score)) }))];
  });
  const all = layers.reduce((n, l) => n + l.units, 0);
  const goal = method === 'magnitude' ? Math.round(target * all) : Math.floor(target * all + 1e-9);
  const at = layers.map(() => 0);
  const sparsity = layers.map(() => 0);
  let achieved = 0;
  for (;;) {
    if (achieved >= goal) break;
    let best = -1, bestRatio = Infinity, bestGain = 0;
    layers.forEach((l, i) => {
      const next = steps[i]![at[i]! + 1];
      if (!next) return;
      const gain = amount(method, l.units, next.sparsity) - amount(method, l.units, sparsity[i]!);
      if (gain <= 0) return;
      const ratio = (next.drop - steps[i]![at[i]!]!.drop) / gain;
      if (ratio < bestRatio) [best, bestRatio, bestGain] = [i, ratio, gain];
    });
    if (best < 0) break;
    const l = layers[best]!;
    if (achieved + bestGain >= goal) {
      // the last step: just the fraction that reaches the goal
      const need = goal - achieved + amount(method, l.units, sparsity[best]!);
      sparsity[best] = need / l.units;
      at[best]!++;
      achieved = goal;
      break;
    }
    at[best]!++;
    sparsity[best] = steps[best]![at[best]!]!.sparsity;
    achieved += bestGain;
  }
  const layerSparsity: Record<string, number> = {};
  layers.forEach((l, i) => (layerSparsity[l.layer] = sparsity[i]!));
  const expectedDrop = layers.reduce((s, _l, i) => s + steps[i]![at[i]!]!.drop, 0);
  return { target, layerSparsity, achieved: all ? achieved / all : 0, expectedDrop };
}
