/**
 * Loss subgraphs of the training step, with their gradient with respect to the logits written in closed form (no
 * rule walk through the loss).
 *
 * Hinton distillation, averaged over the batch of B rows, for student logits s, one-hot labels y, teacher logits t
 * and temperature T:
 *
 *     loss = α·CE(s, y) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T))
 *     CE(s, y) = −Σ_c y_c·log softmax(s)_c
 *     d loss / d s = [α·(softmax(s) − y) + (1 − α)·T·(softmax(s/T) − softmax(t/T))] / B
 *
 * The CE gradient takes each label row to sum to 1 (one-hot, or smoothed labels). When only one term is present
 * (`useLabels` or `useTeacher` false) it has weight 1 and `alpha` is ignored; a term of weight 0 is left out.
 */
import { OptionsError, expected } from '../errors.js';
import { attr, type Value } from '../onnx/ir.js';
import type { Emitter } from './graph.js';

/** What the step graph's loss is. */
export interface LossSpec {
  /** Distillation temperature T (default 4). */
  temperature?: number;
  /** Weight of the hard-label cross-entropy term (default 0.5): 1 = plain CE, 0 = pure distillation. */
  alpha?: number;
  /** Feed one-hot labels (`labels`, float32 [B, C]) and add the CE term. */
  useLabels: boolean;
  /** Feed teacher logits (`teacher_logits`, float32 [B, C]) and add the distillation term. */
  useTeacher: boolean;
}

/** A LossSpec with its defaults applied and the weight of each term. */
export interface ResolvedLoss {
  temperature: number;
  alpha: number;
  useLabels: boolean;
  useTeacher: boolean;
  /** Weight of CE (0 when absent). */
  ceWeight: number;
  /** Weight of T²·KL (0 when absent). */
  kdWeight: number;
}

/**
 * Applies defaults and checks a LossSpec; OptionsError naming the bad field.
 *
 * @example
 * ```ts
 * resolveLossSpec({ useLabels: true, useTeacher: true }); // { temperature: 4, alpha: 0.5, ceWeight: 0.5, kdWeight: 0.5, … }
 * ```
 */
export function resolveLossSpec(spec: LossSpec): ResolvedLoss {
  if (!spec || typeof spec !== 'object') throw new OptionsError(expected('an object', 'loss', spec));
  const temperature = spec.temperature ?? 4;
  const alpha = spec.alpha ?? 0.5;
  if (!(Number.isFinite(temperature) && temperature > 0)) throw new OptionsError(expected('a positive number', 'loss.temperature', temperature));
  if (!(Number.isFinite(alpha) && alpha >= 0 && alpha <= 1)) throw new OptionsError(expected('a number in [0, 1]', 'loss.alpha', alpha));
  if (typeof spec.useLabels !== 'boolean') throw new OptionsError(expected('true or false', 'loss.useLabels', spec.useLabels));
  if (typeof spec.useTeacher !== 'boolean') throw new OptionsError(expected('true or false', 'loss.useTeacher', spec.useTeacher));
  if (!spec.useLabels && !spec.useTeacher) throw new OptionsError('Invalid options for the loss: useLabels and useTeacher are both false, so there is nothing to learn from');
  const both = spec.useLabels && spec.useTeacher;
  return {
    temperature,
    alpha,
    useLabels: spec.useLabels,
    useTeacher: spec.useTeacher,
    ceWeight: spec.useLabels ? (both ? alpha : 1) : 0,
    kdWeight: spec.useTeacher ? (both ? 1 - alpha : 1) : 0,
  };
}

/**
 * Emits the loss (a scalar of shape []) and d(loss)/d(logits) for logits [B, C].
 *
 * @example
 * ```ts
 * const { loss, dlogits } = buildLoss(em, logits, labels, teacher, resolveLossSpec({ useLabels: true, useTeacher: false }));
 * ```
 */
export function buildLoss(em: Emitter, logits: Value, labels: Value | undefined, teacher: Value | undefined, spec: ResolvedLoss): { loss: Value; dlogits: Value } {
  const axis = { axis: attr.int(-1) };
  const batch = em.cast(em.op('Gather', [em.op('Shape', [logits]), em.i64([0], [])], { axis: attr.int(0) }), 'float32');
  const invB = em.op('Reciprocal', [batch]);
  const terms: Value[] = [];
  const grads: Value[] = [];
  const sumAll = (x: Value) => em.op('ReduceSum', [x], { keepdims: attr.int(0) });
  if (spec.ceWeight > 0 && labels) {
    const logp = em.op('LogSoftmax', [logits], axis);
    // −Σ y·log p, the sign folded into the weight
    terms.push(em.scale(sumAll(em.mul(labels, logp)), -spec.ceWeight));
    grads.push(em.scale(em.sub(em.op('Exp', [logp]), labels), spec.ceWeight));
  }
  if (spec.kdWeight > 0 && teacher) {
    const T = spec.temperature;
    const lps = em.op('LogSoftmax', [em.scale(logits, 1 / T)], axis);
    const lpt = em.op('LogSoftmax', [em.scale(teacher, 1 / T)], axis);
    const pt = em.op('Exp', [lpt]);
    // KL(pt ‖ ps) = Σ pt·(log pt − log ps)
    terms.push(em.scale(sumAll(em.mul(pt, em.sub(lpt, lps))), spec.kdWeight * T * T));
    grads.push(em.scale(em.sub(em.op('Exp', [lps]), pt), spec.kdWeight * T));
  }
  // a scalar from ReduceSum can come back shaped [1] (probe note): Reshape to [] explicitly
  const loss = em.reshape(em.mul(em.sum(terms), invB), []);
  const dlogits = em.mul(em.sum(grads), invB);
  return { loss, dlogits };
}

/**
 * A hint (intermediate-feature) term of the loss, FitNets-style: `weight · mean((student − target)²)` over every
 * element, the gradient flowing into `student` only (`target` is a constant, e.g. a frozen teacher's feature map).
 * Both name values of the model the step graph is built from, of the same shape; `student` is usually the output of
 * a learned adapter (see `attachHints` in `../distill/hints.ts`).
 */
export interface HintLoss {
  /** The value that learns (its producers' parameters get the gradient). */
  student: string;
  /** The value it is pulled towards (no gradient flows into it). */
  target: string;
  /** Weight of the term (default 1). */
  weight?: number;
}

/**
 * Emits one hint term: `mse = mean((s − t)²)` (unweighted, for reading back), the weighted term `weight·mse`, and
 * d(term)/d(s) = 2·weight·(s − t)/N for N elements (N read at run time, so any batch size works).
 *
 * @example
 * ```ts
 * const { mse, term, ds } = buildHintLoss(em, adapterOut, teacherFeature, 0.5);
 * ```
 */
export function buildHintLoss(em: Emitter, student: Value, target: Value, weight: number): { mse: Value; term: Value; ds: Value } {
  if (!(Number.isFinite(weight) && weight > 0)) throw new OptionsError(expected('a positive number', `the weight of the hint on "${student.name}"`, weight));
  const diff = em.sub(student, target);
  const n = em.cast(em.op('Size', [diff]), 'float32');
  const invN = em.op('Reciprocal', [n]);
  const sq = em.op('ReduceSum', [em.mul(diff, diff)], { keepdims: attr.int(0) });
  const mse = em.reshape(em.mul(sq, invN), []);
  return { mse, term: em.scale(mse, weight), ds: em.mul(em.scale(diff, 2 * weight), invN) };
}
