/**
 * Optimizers for training in TypeScript: the training graph computes gradients, and the update happens here, in
 * place on Float32Arrays (under 1 ms for ~400k parameters; see shared/notes/onnx-training-probe.md).
 *
 * The updates follow PyTorch 1.13's `torch.optim` exactly (checked in test/train/optim.test.ts):
 * - `sgd`: g ← g + wd·p; buf ← μ·buf + g (buf = g on the first step); g ← g + μ·buf (Nesterov) or buf; p ← p − lr·g.
 * - `adam`: g ← g + wd·p; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
 * - `adamw`: p ← p·(1 − lr·wd), then Adam without weight decay in the gradient.
 * - Gradient clipping by global norm (`torch.nn.utils.clip_grad_norm_`): n = ‖(‖g₁‖, ‖g₂‖, …)‖;
 *   every g ← g · min(1, maxNorm / (n + 1e-6)).
 *
 * Weight decay applies to the parameters a caller marks `decay` (the training loop marks weights of rank ≥ 2, not
 * biases or BatchNormalization scales, as is common practice); `torch.optim` applies it to every parameter of a
 * group, so a test that compares with PyTorch marks all of them.
 *
 * Learning-rate schedules are functions of the step (0-based, counting optimizer steps), `learningRate` below.
 */
import { z } from 'zod';
import { OptionsError, expected, oneOf } from '../errors.js';
import { parseOptions } from '../pass.js';

/** Optimizer kinds. */
export const OPTIMIZERS = ['sgd', 'adam', 'adamw'] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];

/** Learning-rate schedule kinds (after the optional linear warm-up). */
export const SCHEDULES = ['constant', 'cosine', 'step'] as const;

/** The schedule: one of `SCHEDULES`, with an optional linear warm-up in front. */
export const scheduleOptions = z
  .object({
    kind: z.enum(SCHEDULES).default('constant').describe('constant; cosine (annealed to minLr at the last step); step (× gamma every stepSize steps)'),
    warmupSteps: z.number().int().min(0).default(0).describe('linear warm-up steps: step t < warmupSteps uses lr·(t+1)/warmupSteps'),
    minLr: z.number().min(0).default(0).describe('cosine: the learning rate at the end'),
    stepSize: z.number().int().positive().default(1000).describe('step: steps between decays'),
    gamma: z.number().positive().default(0.1).describe('step: decay factor'),
  })
  .strict();

/** Options of an optimizer: its kind, hyper-parameters, clipping and schedule. */
export const optimizerOptions = z
  .object({
    kind: z.enum(OPTIMIZERS).default('adam').describe('sgd (with momentum), adam, or adamw (decoupled weight decay)'),
    lr: z.number().positive().default(1e-3).describe('base learning rate'),
    momentum: z.number().min(0).max(1).default(0.9).describe('sgd: momentum (0 = plain SGD)'),
    nesterov: z.boolean().default(false).describe('sgd: Nesterov momentum'),
    beta1: z.number().min(0).max(1).default(0.9).describe('adam/adamw: first-moment decay'),
    beta2: z.number().min(0).max(1).default(0.999).describe('adam/adamw: second-moment decay'),
    eps: z.number().positive().default(1e-8).describe('adam/adamw: denominator epsilon'),
    weightDecay: z.number().min(0).default(0).describe('L2 penalty (sgd, adam) or decoupled decay (adamw)'),
    maxGradNorm: z.number().positive().optional().describe('clip gradients to this global L2 norm'),
    schedule: scheduleOptions.default(scheduleOptions.parse({})),
  })
  .strict();

export type OptimizerOptions = z.input<typeof optimizerOptions>;
export type ResolvedOptimizerOptions = z.output<typeof optimizerOptions>;
export type ScheduleOptions = z.output<typeof scheduleOptions>;

/** One parameter as the optimizer sees it: its values (updated in place) and its gradient. */
export interface ParamSlot {
  name: string;
  value: Float32Array;
  grad: Float32Array;
  /** Whether weight decay applies (default true). */
  decay?: boolean;
}

/** An optimizer's state, plain data: what a checkpoint stores to resume exactly. */
export interface OptimizerState {
  kind: OptimizerKind;
  /** Optimizer steps taken so far. */
  step: number;
  /** Per parameter name: its slots (`momentum` for sgd; `m` and `v` for adam/adamw). */
  slots: Record<string, Record<string, Float32Array>>;
}

/** What one `step` did. */
export interface StepInfo {
  /** The learning rate used. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Whether the gradients were scaled down. */
  clipped: boolean;
}

/**
 * An optimizer: `step` updates parameters in place from their gradients.
 *
 * @example
 * ```ts
 * const opt = makeOptimizer({ kind: 'adam', lr: 1e-3, schedule: { kind: 'cosine', warmupSteps: 100 } }, 5000);
 * opt.step([{ name: 'fc.weight', value: w, grad: dw }]);
 * const saved = opt.state(); // for a checkpoint; opt.load(saved) resumes
 * ```
 */
export interface Optimizer {
  readonly options: ResolvedOptimizerOptions;
  /** Total steps the schedule spans (cosine anneals over it). */
  readonly totalSteps: number;
  /** The learning rate the next step will use. */
  readonly lr: number;
  step(params: readonly ParamSlot[]): StepInfo;
  /** A deep copy of the state. */
  state(): OptimizerState;
  /** Restores a state made by `state()` (copied). */
  load(state: OptimizerState): void;
}

/**
 * The learning rate at optimizer step `step` (0-based) of `totalSteps`.
 *
 * - warm-up (t < W): lr·(t+1)/W — PyTorch's `LinearLR(start_factor=1/W, total_iters=W−1)`;
 * - then, with s = t − W and S = totalSteps − W: `constant` lr; `cosine` minLr + (lr − minLr)·(1 + cos(π·s/S))/2
 *   (`CosineAnnealingLR(T_max=S, eta_min=minLr)`); `step` lr·gamma^⌊s/stepSize⌋ (`StepLR`).
 *
 * @example
 * ```ts
 * learningRate({ kind: 'cosine', warmupSteps: 0, minLr: 0, stepSize: 1, gamma: 1 }, 0.1, 50, 100); // 0.05
 * ```
 */
export function learningRate(schedule: ScheduleOptions, baseLr: number, step: number, totalSteps: number): number {
  const w = schedule.warmupSteps;
  if (step < w) return (baseLr * (step + 1)) / w;
  const s = step - w;
  switch (schedule.kind) {
    case 'constant':
      return baseLr;
    case 'cosine': {
      const span = Math.max(1, totalSteps - w);
      const t = Math.min(s, span);
      return schedule.minLr + ((baseLr - schedule.minLr) * (1 + Math.cos((Math.PI * t) / span))) / 2;
    }
    case 'step':
      return baseLr * schedule.gamma ** Math.floor(s / schedule.stepSize);
  }
}

/**
 * Scales gradients in place so their global L2 norm is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`
 * (coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the norm before clipping.
 *
 * @example
 * ```ts
 * const norm = clipGradNorm([dw, db], 1.0);
 * ```
 */
export function clipGradNorm(grads: readonly Float32Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    const c = Math.fround(coef);
    for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * c;
  }
  return norm;
}

/** ‖(‖g₁‖, ‖g₂‖, …)‖ with each tensor's norm rounded to float32, as PyTorch stacks float32 norms. */
function globalNorm(grads: readonly Float32Array[]): number {
  let total = 0;
  for (const g of grads) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
    const n = Math.fround(Math.sqrt(s));
    total += n * n;
  }
  return Math.fround(Math.sqrt(total));
}

/**
 * Makes an optimizer. `totalSteps` is the length of training in optimizer steps (the cosine schedule needs it;
 * default 1 for schedules that do not).
 *
 * @example
 * ```ts
 * const sgd = makeOptimizer({ kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
 * ```
 */
export function makeOptimizer(options: OptimizerOptions = {}, totalSteps = 1): Optimizer {
  const o = parseOptions(optimizerOptions, options, 'optimizer');
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) throw new OptionsError(expected('a positive integer', 'totalSteps', totalSteps));
  let step = 0;
  let slots: Record<string, Record<string, Float32Array>> = {};

  const slot = (p: ParamSlot, key: string): Float32Array => {
    const s = (slots[p.name] ??= {});
    let a = s[key];
    if (!a) a = s[key] = new Float32Array(p.value.length);
    else if (a.length !== p.value.length) {
      throw new OptionsError(expected(`${a.length} elements (as in the optimizer state)`, `parameter "${p.name}"`, `${p.value.length}`));
    }
    return a;
  };

  const sgd = (p: ParamSlot, lr: number): void => {
    const { value: w, grad: g } = p;
    const wd = p.decay === false ? 0 : o.weightDecay;
    const mu = o.momentum;
    if (mu === 0) {
      for (let i = 0; i < w.length; i++) w[i] = w[i]! - lr * (g[i]! + wd * w[i]!);
      return;
    }
    const first = !slots[p.name]?.momentum;
    const buf = slot(p, 'momentum');
    for (let i = 0; i < w.length; i++) {
      const gi = Math.fround(g[i]! + wd * w[i]!);
      buf[i] = first ? gi : mu * buf[i]! + gi;
      const b = buf[i]!;
      const d = o.nesterov ? gi + mu * b : b;
      w[i] = w[i]! - lr * d;
    }
  };

  const adam = (p: ParamSlot, lr: number, t: number): void => {
    const { value: w, grad: g } = p;
    const decay = p.decay === false ? 0 : o.weightDecay;
    const decoupled = o.kind === 'adamw';
    const m = slot(p, 'm');
    const v = slot(p, 'v');
    const { beta1: b1, beta2: b2, eps } = o;
    const bc1 = 1 - b1 ** t;
    const sqrtBc2 = Math.sqrt(1 - b2 ** t);
    const stepSize = lr / bc1;
    const shrink = decoupled ? 1 - lr * decay : 1;
    for (let i = 0; i < w.length; i++) {
      let wi = w[i]!;
      let gi = g[i]!;
      if (decoupled) wi = Math.fround(wi * shrink);
      else gi = Math.fround(gi + decay * wi);
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      w[i] = wi - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sqrtBc2 + eps);
    }
  };

  return {
    options: o,
    totalSteps,
    get lr() {
      return learningRate(o.schedule, o.lr, step, totalSteps);
    },
    step(params) {
      const lr = learningRate(o.schedule, o.lr, step, totalSteps);
      const grads = params.map((p) => p.grad);
      for (const p of params) {
        if (p.grad.length !== p.value.length) throw new OptionsError(expected(`${p.value.length} gradient elements`, `parameter "${p.name}"`, p.grad.length));
      }
      let gradNorm: number;
      let clipped = false;
      if (o.maxGradNorm !== undefined) {
        gradNorm = clipGradNorm(grads, o.maxGradNorm);
        clipped = o.maxGradNorm / (gradNorm + 1e-6) < 1;
      } else gradNorm = globalNorm(grads);
      step++;
      for (const p of params) {
        if (o.kind === 'sgd') sgd(p, lr);
        else adam(p, lr, step);
      }
      return { lr, gradNorm, clipped };
    },
    state() {
      const copy: OptimizerState['slots'] = {};
      for (const [name, s] of Object.entries(slots)) copy[name] = Object.fromEntries(Object.entries(s).map(([k, a]) => [k, a.slice()]));
      return { kind: o.kind, step, slots: copy };
    },
    load(state) {
      if (state.kind !== o.kind) throw new OptionsError(expected(`state of a ${o.kind} optimizer`, 'optimizer state', state.kind));
      if (!Number.isSafeInteger(state.step) || state.step < 0) throw new OptionsError(expected('a non-negative step count', 'optimizer state', state.step));
      const known = o.kind === 'sgd' ? ['momentum'] : ['m', 'v'];
      slots = {};
      for (const [name, s] of Object.entries(state.slots)) {
        for (const k of Object.keys(s)) {
          if (!known.includes(k)) throw new OptionsError(`Optimizer state of "${name}" has slot "${k}", which ${o.kind} does not use ${oneOf(known)}`);
        }
        slots[name] = Object.fromEntries(Object.entries(s).map(([k, a]) => [k, Float32Array.from(a)]));
      }
      step = state.step;
    },
  };
}
