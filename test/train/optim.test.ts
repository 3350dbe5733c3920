/**
 * Optimizers and schedules against PyTorch 1.13's torch.optim and torch.optim.lr_scheduler (Debian's python3-torch;
 * only the comparisons are skipped when it is missing): a few steps with fixed gradients, relative error ≤ 1e-5.
 */
import { expect } from 'chai';
import { OptionsError } from '../../src/errors.js';
import { clipGradNorm, learningRate, makeOptimizer, scheduleOptions, type OptimizerOptions } from '../../src/train/optim.js';
import { hasPython, runPython } from '../helpers/python.js';

/** Deterministic pseudo-random floats in [-1, 1). */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround((s / 2 ** 32) * 2 - 1));
  }
  return out;
}

const SHAPES = [37, 5, 128];
const STEPS = 6;

interface Case {
  name: string;
  options: OptimizerOptions;
  /** torch.optim constructor call, with `p` the parameter list and `lr` the base lr. */
  torch: string;
}

const CASES: Case[] = [
  { name: 'sgd', options: { kind: 'sgd', lr: 0.1, momentum: 0 }, torch: 'torch.optim.SGD(p, lr=0.1)' },
  { name: 'sgd momentum', options: { kind: 'sgd', lr: 0.05, momentum: 0.9 }, torch: 'torch.optim.SGD(p, lr=0.05, momentum=0.9)' },
  {
    name: 'sgd nesterov + weight decay',
    options: { kind: 'sgd', lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.01 },
    torch: 'torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)',
  },
  { name: 'adam', options: { kind: 'adam', lr: 0.01 }, torch: 'torch.optim.Adam(p, lr=0.01)' },
  {
    name: 'adam + weight decay, betas, eps',
    options: { kind: 'adam', lr: 0.003, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.05 },
    torch: 'torch.optim.Adam(p, lr=0.003, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)',
  },
  { name: 'adamw', options: { kind: 'adamw', lr: 0.01, weightDecay: 0.1 }, torch: 'torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)' },
  {
    name: 'adam + clipping + cosine with warm-up',
    options: { kind: 'adam', lr: 0.01, maxGradNorm: 0.5, schedule: { kind: 'cosine', warmupSteps: 2, minLr: 0.001 } },
    torch: 'torch.optim.Adam(p, lr=0.01)',
  },
  {
    name: 'sgd momentum + clipping + step schedule',
    options: { kind: 'sgd', lr: 0.1, momentum: 0.9, maxGradNorm: 1, schedule: { kind: 'step', stepSize: 2, gamma: 0.5 } },
    torch: 'torch.optim.SGD(p, lr=0.1, momentum=0.9)',
  },
];

/** Gradients of step `t` for parameter `j`; scaled so clipping triggers on some steps and not on others. */
function grads(t: number, j: number): number[] {
  return values(SHAPES[j]!, 1000 + 31 * t + j).map((x) => Math.fround(x * (t % 2 ? 0.05 : 0.4)));
}

function init(j: number): number[] {
  return values(SHAPES[j]!, 7 + j);
}

/** Runs a case in TypeScript; returns the parameters after every step and the learning rates used. */
function runTs(c: Case, { resumeAt }: { resumeAt?: number } = {}): { params: number[][][]; lrs: number[] } {
  let opt = makeOptimizer(c.options, STEPS);
  const w = SHAPES.map((_, j) => Float32Array.from(init(j)));
  const params: number[][][] = [];
  const lrs: number[] = [];
  for (let t = 0; t < STEPS; t++) {
    if (t === resumeAt) {
      const saved = opt.state();
      opt = makeOptimizer(c.options, STEPS);
      opt.load(saved);
    }
    const info = opt.step(w.map((value, j) => ({ name: `p${j}`, value, grad: Float32Array.from(grads(t, j)) })));
    lrs.push(info.lr);
    params.push(w.map((a) => Array.from(a)));
  }
  return { params, lrs };
}

const TORCH_STEPS = `
import json, sys, torch
torch.set_default_dtype(torch.float32)
req = json.load(sys.stdin)
out = []
for c in req['cases']:
    p = [torch.tensor(x, dtype=torch.float32, requires_grad=True) for x in req['init']]
    opt = eval(c['torch'])
    clip = c.get('maxGradNorm')
    steps = []
    for t, gs in enumerate(req['grads']):
        for g in opt.param_groups:
            g['lr'] = c['lrs'][t]
        for x, g in zip(p, gs):
            x.grad = torch.tensor(g, dtype=torch.float32)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(p, clip)
        opt.step()
        steps.append([x.detach().tolist() for x in p])
    out.append(steps)
print(json.dumps(out))
`;

const TORCH_SCHEDULES = `
import json, sys, torch
req = json.load(sys.stdin)
def run(make, n, lr):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    s = make(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step(); s.step()
    return lrs
S = torch.optim.lr_scheduler
n = req['n']
print(json.dumps({
  'cosine': run(lambda o: S.CosineAnnealingLR(o, T_max=n, eta_min=0.01), n, 0.5),
  'step': run(lambda o: S.StepLR(o, step_size=7, gamma=0.3), n, 0.5),
  'warmup': run(lambda o: S.LinearLR(o, start_factor=1/10, end_factor=1.0, total_iters=9), n, 0.5),
}))
`;

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-6);
}

describe('train/optim', () => {
  const torch = hasPython('torch');

  describe('against torch.optim (fixed gradients, 6 steps)', function () {
    before(function () {
      if (!torch) this.skip();
    });
    it('every optimizer case matches to a relative error ≤ 1e-5', () => {
      const ts = CASES.map((c) => runTs(c));
      const ref = runPython<number[][][][]>(TORCH_STEPS, {
        init: SHAPES.map((_, j) => init(j)),
        grads: Array.from({ length: STEPS }, (_, t) => SHAPES.map((__, j) => grads(t, j))),
        cases: CASES.map((c, i) => ({ torch: c.torch, lrs: ts[i]!.lrs, maxGradNorm: c.options.maxGradNorm ?? null })),
      });
      CASES.forEach((c, i) => {
        let worst = 0;
        for (let t = 0; t < STEPS; t++) {
          for (let j = 0; j < SHAPES.length; j++) {
            const a = ts[i]!.params[t]![j]!, b = ref[i]![t]![j]!;
            // relative to the parameter's scale: single elements can cross zero
            const scale = Math.max(...b.map(Math.abs));
            for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!) / scale);
          }
        }
        expect(worst, c.name).to.be.at.most(1e-5);
      });
    });

    it('schedules match CosineAnnealingLR, StepLR and LinearLR warm-up', () => {
      const n = 30;
      const ref = runPython<Record<string, number[]>>(TORCH_SCHEDULES, { n });
      const sched = (o: object) => scheduleOptions.parse(o);
      for (let t = 0; t < n; t++) {
        expect(relErr(learningRate(sched({ kind: 'cosine', minLr: 0.01 }), 0.5, t, n), ref.cosine![t]!)).to.be.at.most(1e-5);
        expect(relErr(learningRate(sched({ kind: 'step', stepSize: 7, gamma: 0.3 }), 0.5, t, n), ref.step![t]!)).to.be.at.most(1e-5);
        expect(relErr(learningRate(sched({ kind: 'constant', warmupSteps: 10 }), 0.5, t, n), ref.warmup![t]!)).to.be.at.most(1e-5);
      }
    });
  });

  it('state() → load() resumes exactly', () => {
    for (const c of CASES) {
      const straight = runTs(c);
      const resumed = runTs(c, { resumeAt: 3 });
      expect(resumed.params, c.name).to.deep.equal(straight.params);
    }
  });

  it('clipGradNorm scales to the norm and leaves small gradients alone', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    expect(clipGradNorm(g, 1)).to.equal(5);
    expect(Math.hypot(g[0]![0]!, g[1]![1]!)).to.be.closeTo(1, 1e-6);
    const small = [Float32Array.from([0.3, 0.4])];
    clipGradNorm(small, 1);
    expect(Array.from(small[0]!)).to.deep.equal([Math.fround(0.3), Math.fround(0.4)]);
  });

  it('weight decay skips parameters marked decay: false', () => {
    const opt = makeOptimizer({ kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0.5 });
    const a = Float32Array.from([2]), b = Float32Array.from([2]);
    opt.step([
      { name: 'a', value: a, grad: new Float32Array(1) },
      { name: 'b', value: b, grad: new Float32Array(1), decay: false },
    ]);
    expect([a[0], b[0]]).to.deep.equal([1, 2]);
  });

  it('rejects bad options and mismatched state with messages that name the field', () => {
    expect(() => makeOptimizer({ kind: 'rmsprop' } as unknown as OptimizerOptions)).to.throw(OptionsError, /kind/);
    expect(() => makeOptimizer({ lr: -1 })).to.throw(OptionsError, /lr/);
    expect(() => makeOptimizer({ schedule: { kind: 'cosine', warmup: 3 } } as unknown as OptimizerOptions)).to.throw(OptionsError, /warmup/);
    const adam = makeOptimizer({ kind: 'adam' });
    expect(() => makeOptimizer({ kind: 'sgd' }).load(adam.state())).to.throw(OptionsError, /sgd optimizer.*"adam"/);
    expect(() => adam.step([{ name: 'w', value: new Float32Array(3), grad: new Float32Array(2) }])).to.throw(OptionsError, /parameter "w"/);
  });
});
