/**
 * Hint losses in the training-step graph, checked against PyTorch autograd (torch 1.13, float64): a tiny student
 * and teacher (a BatchNormalization in the teacher, which must stay in inference mode; value and initializer names
 * that collide on purpose), joined by `attachHints` with a Conv 1×1 adapter on a [B, C, H, W] tensor and a Gemm
 * adapter on a [B, F] tensor. The combined loss (CE + T²·KL + Σ weight·MSE), each hint's MSE and every gradient
 * (student and adapters; none for the teacher) at two batch sizes through one step graph. Skipped only when torch
 * is missing; the structural checks run always.
 */
import { expect } from 'chai';
import { attachHints } from '../../src/distill/hints.js';
import { GraphError, OptionsError } from '../../src/errors.js';
import { attr, Model, type Attr, type Value } from '../../src/onnx/ir.js';
import { Runner } from '../../src/onnx/runner.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { buildTrainingGraph, HINTS_METADATA_KEY } from '../../src/train/graph.js';
import { mulberry32 } from '../../src/util/random.js';
import { hasPython, runPython } from '../helpers/python.js';
import { relErr } from '../helpers/assert.js';

const count = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

/** x [B,2,6,6] → Conv 3×3 → [BN] → Relu "feat" → GlobalAveragePool → Flatten "flat" → Gemm "logits". */
function tiny(seed: number, channels: number, opset: number, batchNorm: boolean): Model {
  const r = mulberry32(seed);
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', opset);
  const g = m.graph;
  g.name = `tiny${channels}`;
  const w = (name: string, dims: number[], lo = -0.5, hi = 0.5) => g.addInitializer(name, Tensor.from('float32', dims, Float32Array.from({ length: count(dims) }, () => lo + (hi - lo) * r())));
  const x = g.declareValue('x');
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 2, 6, 6] };
  g.inputs.push(x);
  const node = (opType: string, inputs: Value[], out: string, attributes: Record<string, Attr> = {}) => g.addNode({ opType, inputs, outputs: [out], attributes }).output(0);
  let h = node('Conv', [x, w('c1.w', [channels, 2, 3, 3]), w('c1.b', [channels])], 'c1_out', { pads: attr.ints([1, 1, 1, 1]) });
  if (batchNorm) h = node('BatchNormalization', [h, w('bn.s', [channels], 0.5, 1.5), w('bn.b', [channels]), w('bn.rm', [channels]), w('bn.rv', [channels], 0.5, 2)], 'bn_out', { epsilon: attr.float(1e-5) });
  const feat = node('Relu', [h], 'feat');
  const flat = node('Flatten', [node('GlobalAveragePool', [feat], 'gap')], 'flat');
  const logits = node('Gemm', [flat, w('fc.w', [10, channels], -1, 1), w('fc.b', [10])], 'logits', { transB: attr.int(1) });
  g.outputs.push(logits);
  return m;
}

const SCRIPT = String.raw`
import json, sys, torch
import torch.nn.functional as F
torch.set_num_threads(2)
inp = json.load(sys.stdin)
T, alpha, w0, w1 = inp['T'], inp['alpha'], inp['w0'], inp['w1']
def t(v, grad=False):
    return torch.tensor(v['data'], dtype=torch.float64).reshape(v['dims']).requires_grad_(grad)
out = {}
for case in inp['cases']:
    W = {k: t(v, not k.startswith('hint/teacher/')) for k, v in inp['weights'].items()}
    Q = lambda k: W['hint/teacher/' + k]
    x, y, te = t(case['x']), t(case['labels']), t(case['teacher'])
    sf = F.relu(F.conv2d(x, W['c1.w'], W['c1.b'], padding=1))
    sflat = sf.mean((2, 3))
    s = F.linear(sflat, W['fc.w'], W['fc.b'])
    tf = F.relu(F.batch_norm(F.conv2d(x, Q('c1.w'), Q('c1.b'), padding=1), Q('bn.rm'), Q('bn.rv'), Q('bn.s'), Q('bn.b'), training=False, eps=1e-5))
    tflat = tf.mean((2, 3))
    mse0 = ((F.conv2d(sf, W['hint0/adapter.weight'], W['hint0/adapter.bias']) - tf) ** 2).mean()
    mse1 = ((F.linear(sflat, W['hint1/adapter.weight'], W['hint1/adapter.bias']) - tflat) ** 2).mean()
    B = s.shape[0]
    ce = -(y * F.log_softmax(s, 1)).sum() / B
    lpt = F.log_softmax(te / T, 1)
    kl = (lpt.exp() * (lpt - F.log_softmax(s / T, 1))).sum() / B
    loss = alpha * ce + (1 - alpha) * T * T * kl + w0 * mse0 + w1 * mse1
    loss.backward()
    out[case['name']] = {'loss': loss.item(), 'mse': [mse0.item(), mse1.item()],
                         'grads': {k: v.grad.flatten().tolist() for k, v in W.items() if v.grad is not None}}
print(json.dumps(out))
`;

describe('train: hint losses', function () {
  this.timeout(120_000);
  const [T, alpha, w0, w1] = [3, 0.3, 0.7, 1.3];
  const student = () => tiny(1, 3, 17, false);
  // opset 13 teacher, 17 student: joined at 17
  const teacher = () => tiny(2, 5, 13, true);
  const hints = [
    { teacher: 'feat', student: 'feat', weight: w0 },
    { teacher: 'flat', student: 'flat', weight: w1 },
  ];

  it('attachHints: the teacher copy under hint/teacher/, the adapters, the metadata; the step graph trains only the student and the adapters', () => {
    const { model, losses, adapters } = attachHints(student(), teacher(), hints, { seed: 5 });
    expect(losses).to.deep.equal([
      { student: 'hint0/adapter_out', target: 'hint/teacher/feat', weight: w0 },
      { student: 'hint1/adapter_out', target: 'hint/teacher/flat', weight: w1 },
    ]);
    expect(JSON.parse(model.metadata.get(HINTS_METADATA_KEY)!)).to.deep.equal(losses);
    expect(adapters.map((a) => [a.params, a.teacherShape.slice(1), a.studentShape.slice(1)])).to.deep.equal([
      [['hint0/adapter.weight', 'hint0/adapter.bias'], [5, 6, 6], [3, 6, 6]],
      [['hint1/adapter.weight', 'hint1/adapter.bias'], [5], [3]],
    ]);
    expect(model.graph.initializers.get('hint0/adapter.weight')!.initializer!.dims).to.deep.equal([5, 3, 1, 1]);
    expect(model.graph.initializers.get('hint1/adapter.weight')!.initializer!.dims).to.deep.equal([5, 3]);
    // the teacher's head is not copied: only what leads to the hint tensors
    expect(model.graph.nodes.filter((n) => n.name.startsWith('hint/teacher/')).map((n) => n.opType)).to.deep.equal(['Conv', 'BatchNormalization', 'Relu', 'GlobalAveragePool', 'Flatten']);
    expect(model.opset()).to.equal(17);
    const tg = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: true, temperature: T, alpha } });
    expect(tg.params.map((p) => p.name).sort()).to.deep.equal(['c1.b', 'c1.w', 'fc.b', 'fc.w', 'hint0/adapter.bias', 'hint0/adapter.weight', 'hint1/adapter.bias', 'hint1/adapter.weight']);
    // the teacher's BatchNormalization stays in inference mode: no running statistics to update
    expect(tg.buffers).to.deep.equal([]);
    expect(tg.hintOutputs).to.deep.equal(['hint0_mse', 'hint1_mse']);
    // without hints the builder is unchanged: no hint outputs, the teacher copy and adapters dropped as dead
    const plain = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: false }, hints: [] });
    expect(plain.hintOutputs).to.deep.equal([]);
    expect(plain.model.graph.nodes.some((n) => n.name.startsWith('hint'))).to.equal(false);
  });

  it('loss, hint MSEs and every gradient match PyTorch autograd (float64) at batch sizes 4 and 2', async function () {
    if (!hasPython('torch')) this.skip();
    const { model } = attachHints(student(), teacher(), hints, { seed: 5 });
    const weights = Object.fromEntries([...model.graph.initializers].map(([k, v]) => [k, { dims: [...v.initializer!.dims], data: [...v.initializer!.data<Float32Array>()] }]));
    const r = mulberry32(9);
    const batch = (name: string, B: number) => ({
      name,
      x: { dims: [B, 2, 6, 6], data: Array.from({ length: B * 72 }, () => r() * 2 - 1) },
      labels: { dims: [B, 10], data: Array.from({ length: B * 10 }, (_, i) => ((Math.floor(i / 10) * 3) % 10 === i % 10 ? 1 : 0)) },
      teacher: { dims: [B, 10], data: Array.from({ length: B * 10 }, () => r() * 4 - 2) },
    });
    const cases = [batch('b4', 4), batch('b2', 2)];
    const ref = runPython<Record<string, { loss: number; mse: number[]; grads: Record<string, number[]> }>>(SCRIPT, { T, alpha, w0, w1, weights, cases });
    const tg = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: true, temperature: T, alpha } });
    const runner = await Runner.create(tg.model, { threads: 1, graphOptimizationLevel: 'extended' });
    let worst = 0;
    try {
      for (const c of cases) {
        const feeds: Record<string, Tensor> = {
          x: Tensor.from('float32', c.x.dims, Float32Array.from(c.x.data)),
          labels: Tensor.from('float32', c.labels.dims, Float32Array.from(c.labels.data)),
          teacher_logits: Tensor.from('float32', c.teacher.dims, Float32Array.from(c.teacher.data)),
        };
        for (const p of tg.params) feeds[p.name] = p.init;
        const out = await runner.run(feeds);
        const want = ref[c.name]!;
        const f = (name: string) => out[name]!.data as Float32Array;
        expect(Math.abs(f('loss')[0]! - want.loss) / want.loss, `${c.name}: loss`).to.be.below(1e-5);
        tg.hintOutputs.forEach((h, i) => expect(Math.abs(f(h)[0]! - want.mse[i]!) / want.mse[i]!, `${c.name}: ${h}`).to.be.below(1e-5));
        expect(Object.keys(want.grads).sort()).to.deep.equal(tg.params.map((p) => p.name).sort());
        for (const p of tg.params) {
          const e = relErr(f(p.gradOutput), want.grads[p.name]!);
          worst = Math.max(worst, e);
          expect(e, `${c.name}: gradient of ${p.name}`).to.be.below(1e-4);
        }
      }
    } finally {
      await runner.release();
    }
    console.log(`      worst gradient relative error vs PyTorch (float64): ${worst.toExponential(2)}`);
  });

  it('refuses bad hints with errors naming both tensors', () => {
    expect(() => attachHints(student(), teacher(), [{ teacher: 'feat', student: 'flat' }])).to.throw(OptionsError, 'Hint teacher "feat" [batch, 5, 6, 6] → student "flat" [batch, 3]: a 1×1 adapter joins tensors of the same rank');
    expect(() => attachHints(student(), teacher(), [{ teacher: 'nope', student: 'feat' }])).to.throw(OptionsError, 'No tensor named "nope" in the teacher for hints[0].teacher (one of: "c1_out", "bn_out", "feat"');
    expect(() => attachHints(student(), teacher(), [{ teacher: 'feat', student: 'nope' }])).to.throw(OptionsError, 'No tensor named "nope" in the student for hints[0].student');
    expect(() => attachHints(student(), tiny(2, 5, 18, true), hints)).to.throw(OptionsError, 'the teacher is at opset 18, the student at 17');
    // the builder's own check, for hints given directly
    expect(() => buildTrainingGraph(student(), { loss: { useLabels: true, useTeacher: false }, hints: [{ student: 'feat', target: 'flat' }] })).to.throw(GraphError, 'Hint "feat" [batch, 3, 6, 6] and its target "flat" [batch, 3] must have the same shape');
    expect(() => buildTrainingGraph(student(), { loss: { useLabels: true, useTeacher: false }, hints: [{ student: 'feat', target: 'gone' }] })).to.throw(OptionsError, 'hints[0].target');
  });
});
