/**
 * The training engine (src/train): every gradient rule against numbers that do not come from the rule itself.
 *
 * - Finite differences: one small model per op (and per interesting configuration), every op input a trainable
 *   initializer, the output flattened into the logits, soft random labels. The step graph gives the analytic
 *   gradients; the loss for the central differences is computed in JavaScript doubles from the logits onnxruntime
 *   returns for perturbed parameters. Checked per parameter: 3 random ±1 directions over all elements (error
 *   relative to the spread of ⟨g, v⟩, i.e. ‖g‖₂) and 4 single elements (the 2 largest |g| and 2 random ones, error
 *   relative to max(|gᵢ|, 0.1·max|g|)). Inputs of piecewise ops are kept away from their kinks by more than eps.
 * - PyTorch autograd (torch 1.13 in Debian's python, float64): a small CNN (Conv+BN+ReLU+MaxPool, a depthwise
 *   Conv+BN+ReLU6+pointwise Conv block with a residual Add, Conv+ReLU, GlobalAveragePool, Gemm) with the
 *   distillation loss, in BatchNormalization training mode (gradients, loss, logits, running statistics) and frozen
 *   mode; two batch sizes through one step graph. Skipped only when torch is missing.
 * - The distillation loss against a hand computation from its definition, in doubles (and its gradient against
 *   central differences of that hand computation).
 * - The one error that names every node without a rule; the rule table against the rule files.
 */
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GraphError, OptionsError } from '../../src/errors.js';
import { loadModel } from '../../src/onnx/io.js';
import { attr, Model, type Attr, type Dim, type Value } from '../../src/onnx/ir.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { IM2COL_MAX_ELEMENTS } from '../../src/train/grad/Conv.js';
import { GRAD_RULES } from '../../src/train/grad/table.js';
import { buildTrainingGraph, inferenceModel, type TrainingGraph, type TrainingGraphOptions } from '../../src/train/graph.js';
import { hasPython, runPython } from '../helpers/python.js';
import { relErr } from '../helpers/assert.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** A seeded generator (mulberry32) of uniform numbers in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const count = (dims: readonly number[]) => dims.reduce((p, d) => p * d, 1);

/** A small model built with the IR (opset 17 unless said). */
class Builder {
  readonly model = new Model();
  readonly params = new Set<string>();
  readonly #rand: () => number;

  constructor(seed: number, opset = 17) {
    this.model.irVersion = 8;
    this.model.opsetImports.set('', opset);
    this.model.graph.name = 'g';
    this.#rand = rng(seed);
  }

  get g() {
    return this.model.graph;
  }

  /** Uniform values in [lo, hi). */
  uniform(n: number, lo = -1, hi = 1): Float32Array {
    return Float32Array.from({ length: n }, () => lo + (hi - lo) * this.#rand());
  }

  /** Values at least `margin` away from every kink in `kinks` (drawn in [lo, hi)). */
  awayFrom(n: number, kinks: number[], lo: number, hi: number, margin = 0.05): Float32Array {
    return Float32Array.from({ length: n }, () => {
      for (;;) {
        const v = lo + (hi - lo) * this.#rand();
        if (kinks.every((k) => Math.abs(v - k) > margin)) return v;
      }
    });
  }

  /** Distinct values (spacing 2/n) in random order: no near-ties for max pooling. */
  distinct(n: number): Float32Array {
    const v = Float32Array.from({ length: n }, (_, i) => -1 + (2 * i) / n);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.#rand() * (i + 1));
      [v[i], v[j]] = [v[j]!, v[i]!];
    }
    return v;
  }

  /** A trainable float32 initializer. */
  param(name: string, dims: number[], data: Float32Array = this.uniform(count(dims))): Value {
    this.params.add(name);
    return this.g.addInitializer(name, Tensor.from('float32', dims, data));
  }

  /** A constant initializer (not trained). */
  constF(name: string, dims: number[], data: readonly number[]): Value {
    return this.g.addInitializer(name, Tensor.from('float32', dims, Float32Array.from(data)));
  }

  constI(name: string, values: readonly number[], dims = [values.length]): Value {
    return this.g.addInitializer(name, Tensor.from('int64', dims, values.map(BigInt)));
  }

  input(name: string, dims: Dim[]): Value {
    const v = this.g.declareValue(name);
    v.type = { kind: 'tensor', elemType: 'float32', shape: dims };
    this.g.inputs.push(v);
    return v;
  }

  node(opType: string, inputs: (Value | null)[], attributes: Record<string, Attr> = {}, outputs = 1, name?: string): Value[] {
    return this.g.addNode({ opType, inputs, attributes, outputs, name }).outputs as Value[];
  }

  /** Flattens `y` into the logits [1, n] and makes them the model's output. */
  logits(y: Value): Model {
    const [l] = this.g.addNode({ opType: 'Reshape', inputs: [y, this.constI('to_logits', [1, -1])], outputs: ['logits'] }).outputs as Value[];
    this.g.outputs.push(l!);
    return this.model;
  }
}

/** Cross-entropy with soft labels, averaged over rows, in doubles. */
function crossEntropy(logits: ArrayLike<number>, labels: ArrayLike<number>, rows: number): number {
  const C = logits.length / rows;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, logits[r * C + c]!);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(logits[r * C + c]! - max);
    const lse = max + Math.log(z);
    for (let c = 0; c < C; c++) total -= labels[r * C + c]! * (logits[r * C + c]! - lse);
  }
  return total / rows;
}

function f32(t: RunTensor): Float32Array {
  return t.data as Float32Array;
}

/** Largest error seen per rule configuration, printed after the finite-difference suite. */
const worst = new Map<string, { direction: number; element: number }>();

interface CheckOptions {
  eps?: number;
  batchNorm?: TrainingGraphOptions['batchNorm'];
  tol?: number;
}

/**
 * Builds the step graph of `model`, runs it once for the analytic gradients, and compares every parameter's gradient
 * with central differences of the loss (computed in doubles from the logits). Returns the step graph.
 */
async function gradCheck(label: string, b: Builder, model: Model, options: CheckOptions = {}): Promise<TrainingGraph> {
  const eps = options.eps ?? 3e-3;
  const tol = options.tol ?? 1e-2;
  const tg = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: false }, trainable: (n) => b.params.has(n), batchNorm: options.batchNorm });
  expect(tg.params.map((p) => p.name).sort()).to.deep.equal([...b.params].sort(), `${label}: parameters`);
  const runner = await Runner.create(tg.model, { threads: 1, graphOptimizationLevel: 'extended' });
  try {
    const feeds: Record<string, Tensor> = {};
    for (const p of tg.params) feeds[p.name] = p.init;
    for (const buf of tg.buffers) feeds[buf.name] = buf.init;
    const [rows, C] = tg.model.graph.value('logits').shape as number[];
    expect(typeof rows === 'number' && typeof C === 'number', `${label}: logits shape`).to.equal(true);
    const r = rng(7);
    const labels = new Float32Array(rows * C);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += labels[i * C + c] = 0.05 + r();
      for (let c = 0; c < C; c++) labels[i * C + c]! /= s;
    }
    feeds.labels = Tensor.from('float32', [rows, C], labels);
    const base = await runner.run(feeds);
    const lossAt = async (name: string, data: Float32Array): Promise<number> => {
      const out = await runner.run({ ...feeds, [name]: Tensor.from('float32', feeds[name]!.dims, data) }, ['logits']);
      return crossEntropy(f32(out.logits), labels, rows);
    };
    expect(Math.abs(f32(base.loss)[0]! - crossEntropy(f32(base.logits), labels, rows))).to.be.below(1e-5, `${label}: loss`);
    let dirErr = 0;
    let elemErr = 0;
    for (const p of tg.params) {
      const x = p.init.data<Float32Array>();
      const g = f32(base[p.gradOutput]!);
      expect(g.length).to.equal(x.length);
      const gMax = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(gMax, `${label}: gradient of ${p.name} is all zero`).to.be.above(0);
      for (let d = 0; d < 3; d++) {
        const v = Float32Array.from(x, () => (r() < 0.5 ? -1 : 1));
        const plus = Float32Array.from(x, (xi, i) => xi + eps * v[i]!);
        const minus = Float32Array.from(x, (xi, i) => xi - eps * v[i]!);
        const fd = ((await lossAt(p.name, plus)) - (await lossAt(p.name, minus))) / (2 * eps);
        let an = 0;
        let norm = 0;
        g.forEach((gi, i) => {
          an += gi * v[i]!;
          norm += gi * gi;
        });
        dirErr = Math.max(dirErr, Math.abs(fd - an) / Math.sqrt(norm));
      }
      const order = [...g.keys()].sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!));
      const picks = new Set([order[0]!, order[1] ?? order[0]!, Math.floor(r() * g.length), Math.floor(r() * g.length)]);
      for (const i of picks) {
        const plus = Float32Array.from(x);
        const minus = Float32Array.from(x);
        plus[i]! += eps;
        minus[i]! -= eps;
        // the perturbation actually applied, after rounding to float32
        const h = (plus[i]! - minus[i]!) / 2;
        const fd = ((await lossAt(p.name, plus)) - (await lossAt(p.name, minus))) / (2 * h);
        elemErr = Math.max(elemErr, Math.abs(fd - g[i]!) / Math.max(Math.abs(g[i]!), 0.1 * gMax));
      }
    }
    worst.set(label, { direction: dirErr, element: elemErr });
    expect(dirErr, `${label}: directional derivative error`).to.be.below(tol);
    expect(elemErr, `${label}: element derivative error`).to.be.below(tol);
    return tg;
  } finally {
    await runner.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe('train: gradient rules against finite differences', function () {
  after(() => {
    const rows = [...worst].map(([k, v]) => `    ${k.padEnd(44)} ${v.direction.toExponential(2).padStart(9)} ${v.element.toExponential(2).padStart(9)}`);
    console.log(`    ${'rule (configuration)'.padEnd(44)} ${'direction'.padStart(9)} ${'element'.padStart(9)}\n${rows.join('\n')}`);
  });

  interface ConvCase {
    label: string;
    op?: 'Conv' | 'ConvTranspose';
    x: number[];
    w: number[];
    attrs: Record<string, Attr>;
    bias?: boolean;
  }
  const convCases: ConvCase[] = [
    { label: 'Conv (pads 1)', x: [2, 3, 6, 6], w: [4, 3, 3, 3], attrs: { pads: attr.ints([1, 1, 1, 1]) }, bias: true },
    { label: 'Conv (strides, dilations, asymmetric pads)', x: [2, 2, 7, 8], w: [3, 2, 2, 3], attrs: { strides: attr.ints([2, 2]), dilations: attr.ints([2, 1]), pads: attr.ints([1, 0, 0, 2]) }, bias: true },
    { label: 'Conv (group 2, stride 2)', x: [2, 4, 5, 5], w: [6, 2, 3, 3], attrs: { group: attr.int(2), strides: attr.ints([2, 2]) }, bias: true },
    { label: 'Conv (depthwise)', x: [2, 3, 5, 5], w: [3, 1, 3, 3], attrs: { group: attr.int(3), pads: attr.ints([1, 1, 1, 1]) }, bias: true },
    { label: 'Conv (depthwise, multiplier 2, stride 2)', x: [2, 3, 6, 6], w: [6, 1, 3, 3], attrs: { group: attr.int(3), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
    { label: 'Conv (auto_pad SAME_UPPER, stride 2)', x: [1, 2, 5, 6], w: [2, 2, 3, 3], attrs: { auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) } },
    { label: 'Conv (1-d, stride 2)', x: [2, 2, 9], w: [3, 2, 3], attrs: { strides: attr.ints([2]) }, bias: true },
    // Cin·K·Ho·Wo = 32·9·24·24 > IM2COL_MAX_ELEMENTS: the weight gradient takes the Conv(Xᵀ, dYᵀ) form
    { label: 'Conv (large layer: Xᵀ⋆dYᵀ form, stride 2 trims pads)', x: [1, 32, 48, 48], w: [2, 32, 3, 3], attrs: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) }, bias: true },
    { label: 'Conv (large layer, group 1, no stride)', x: [1, 32, 24, 24], w: [2, 32, 3, 3], attrs: { pads: attr.ints([1, 1, 1, 1]) } },
    { label: 'ConvTranspose (stride 2, pads, output_padding)', op: 'ConvTranspose', x: [2, 3, 4, 4], w: [3, 2, 3, 3], attrs: { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), output_padding: attr.ints([1, 1]) }, bias: true },
    { label: 'ConvTranspose (group 2, dilations)', op: 'ConvTranspose', x: [2, 4, 3, 3], w: [4, 1, 3, 3], attrs: { group: attr.int(2), dilations: attr.ints([2, 1]) }, bias: true },
  ];
  it('takes the Xᵀ⋆dYᵀ weight-gradient form for the large-layer cases', () => {
    expect(32 * 9 * 24 * 24).to.be.above(IM2COL_MAX_ELEMENTS);
  });
  for (const c of convCases) {
    it(c.label, async () => {
      const b = new Builder(11);
      const inputs = [b.param('x', c.x), b.param('w', c.w, b.uniform(count(c.w), -0.5, 0.5))];
      if (c.bias) inputs.push(b.param('b', [c.op === 'ConvTranspose' ? c.w[1]! * (c.attrs.group?.value as number | undefined ?? 1) : c.w[0]!]));
      const [y] = b.node(c.op ?? 'Conv', inputs, c.attrs);
      const tg = await gradCheck(c.label, b, b.logits(y!));
      const im2col = [...tg.model.graph.initializers.keys()].some((k) => k.startsWith('train/im2col_kernel'));
      if (c.label.includes('large layer')) expect(im2col, 'im2col form').to.equal(false);
      if (c.label === 'Conv (pads 1)') expect(im2col, 'im2col form').to.equal(true);
    });
  }

  const gemmCases: { label: string; a: number[]; bm: number[]; c: number[]; attrs: Record<string, Attr> }[] = [
    { label: 'Gemm (transB, alpha, beta, C [N])', a: [3, 4], bm: [5, 4], c: [5], attrs: { transB: attr.int(1), alpha: attr.float(0.7), beta: attr.float(1.3) } },
    { label: 'Gemm (transA, C [M, 1])', a: [4, 3], bm: [4, 5], c: [3, 1], attrs: { transA: attr.int(1) } },
    { label: 'Gemm (transA, transB, C [M, N])', a: [4, 3], bm: [5, 4], c: [3, 5], attrs: { transA: attr.int(1), transB: attr.int(1) } },
    { label: 'Gemm (C scalar)', a: [3, 4], bm: [4, 5], c: [], attrs: {} },
  ];
  for (const c of gemmCases) {
    it(c.label, async () => {
      const b = new Builder(12);
      const [y] = b.node('Gemm', [b.param('a', c.a), b.param('b', c.bm), b.param('c', c.c)], c.attrs);
      // a scalar C shifts every logit alike, which softmax cross-entropy cannot see: bend the output first
      const [z] = c.c.length === 0 ? b.node('Tanh', [y!]) : [y!];
      await gradCheck(c.label, b, b.logits(z!));
    });
  }

  const matmulCases = [
    { label: 'MatMul ([2,3,4]·[4,5], weight form)', a: [2, 3, 4], bm: [4, 5] },
    { label: 'MatMul ([3,4]·[4,5])', a: [3, 4], bm: [4, 5] },
    { label: 'MatMul (broadcast [2,1,3,4]·[3,4,2])', a: [2, 1, 3, 4], bm: [3, 4, 2] },
    { label: 'MatMul (1-d [4]·[2,4,3])', a: [4], bm: [2, 4, 3] },
    { label: 'MatMul (1-d [2,3,4]·[4])', a: [2, 3, 4], bm: [4] },
  ];
  for (const c of matmulCases) {
    it(c.label, async () => {
      const b = new Builder(13);
      const [y] = b.node('MatMul', [b.param('a', c.a), b.param('b', c.bm)]);
      await gradCheck(c.label, b, b.logits(y!));
    });
  }

  for (const [mode, opset, dims] of [
    ['train', 17, [3, 4, 3, 3]],
    ['frozen', 17, [3, 4, 3, 3]],
    ['train', 18, [4, 3]],
    ['frozen', 18, [2, 3, 5]],
  ] as const) {
    it(`BatchNormalization (${mode}, opset ${opset}, x [${dims}])`, async () => {
      const b = new Builder(14, opset);
      const C = dims[1];
      const x = b.param('x', [...dims], b.uniform(count(dims), -2, 3));
      const [y] = b.node('BatchNormalization', [x, b.param('scale', [C]), b.param('bias', [C]), b.constF('mean', [C], [...b.uniform(C)]), b.constF('var', [C], [...b.uniform(C, 0.5, 2)])], {
        epsilon: attr.float(1e-3),
        momentum: attr.float(0.8),
      });
      // a nonlinearity after BN, or the batch-normalized logits would make d/dx nearly degenerate
      const [z] = b.node('Tanh', [y!]);
      const tg = await gradCheck(`BatchNormalization (${mode}, opset ${opset}, rank ${dims.length})`, b, b.logits(z!), { batchNorm: mode });
      expect(tg.buffers.map((x) => x.name)).to.deep.equal(mode === 'train' ? ['mean', 'var'] : []);
    });
  }

  const unary: { label: string; op: string; attrs?: Record<string, Attr>; data: (b: Builder, n: number) => Float32Array; extra?: (b: Builder) => (Value | null)[] }[] = [
    { label: 'Relu', op: 'Relu', data: (b, n) => b.awayFrom(n, [0], -2, 2) },
    { label: 'LeakyRelu (alpha 0.2)', op: 'LeakyRelu', attrs: { alpha: attr.float(0.2) }, data: (b, n) => b.awayFrom(n, [0], -2, 2) },
    { label: 'Sigmoid', op: 'Sigmoid', data: (b, n) => b.uniform(n, -3, 3) },
    { label: 'Tanh', op: 'Tanh', data: (b, n) => b.uniform(n, -2, 2) },
    { label: 'HardSigmoid (alpha 0.3, beta 0.4)', op: 'HardSigmoid', attrs: { alpha: attr.float(0.3), beta: attr.float(0.4) }, data: (b, n) => b.awayFrom(n, [-4 / 3, 2], -3, 3.5, 0.1) },
    { label: 'HardSwish', op: 'HardSwish', data: (b, n) => b.awayFrom(n, [-3, 3], -5, 5) },
    { label: 'Clip (ReLU6, bounds as inputs)', op: 'Clip', data: (b, n) => b.awayFrom(n, [0, 6], -2, 8), extra: (b) => [b.constF('lo', [], [0]), b.constF('hi', [], [6])] },
    { label: 'Clip (max only)', op: 'Clip', data: (b, n) => b.awayFrom(n, [0.5], -2, 2), extra: (b) => [null, b.constF('hi', [], [0.5])] },
    { label: 'Identity', op: 'Identity', data: (b, n) => b.uniform(n) },
    { label: 'Dropout (inference: identity)', op: 'Dropout', data: (b, n) => b.uniform(n), extra: (b) => [b.constF('ratio', [], [0.5])] },
    { label: 'Softmax (axis 1)', op: 'Softmax', attrs: { axis: attr.int(1) }, data: (b, n) => b.uniform(n, -2, 2) },
    { label: 'LogSoftmax (axis -1)', op: 'LogSoftmax', data: (b, n) => b.uniform(n, -2, 2) },
    { label: 'GlobalAveragePool', op: 'GlobalAveragePool', data: (b, n) => b.uniform(n) },
    { label: 'Flatten (axis 2)', op: 'Flatten', attrs: { axis: attr.int(2) }, data: (b, n) => b.uniform(n) },
    { label: 'Transpose (perm [2, 0, 1, 3])', op: 'Transpose', attrs: { perm: attr.ints([2, 0, 1, 3]) }, data: (b, n) => b.uniform(n) },
    { label: 'Transpose (default perm)', op: 'Transpose', data: (b, n) => b.uniform(n) },
    { label: 'ReduceMean (axes [1, 2], keepdims 0)', op: 'ReduceMean', attrs: { axes: attr.ints([1, 2]), keepdims: attr.int(0) }, data: (b, n) => b.uniform(n) },
    { label: 'ReduceMean (axes [-1])', op: 'ReduceMean', attrs: { axes: attr.ints([-1]) }, data: (b, n) => b.uniform(n) },
    { label: 'ReduceMean (all axes)', op: 'ReduceMean', attrs: { keepdims: attr.int(0) }, data: (b, n) => b.uniform(n) },
  ];
  for (const c of unary) {
    it(c.label, async () => {
      const b = new Builder(15);
      const dims = [2, 3, 4, 5];
      const x = b.param('x', dims, c.data(b, count(dims)));
      const [y] = b.node(c.op, [x, ...(c.extra?.(b) ?? [])], c.attrs);
      // ReduceMean over everything gives one logit, which has no cross-entropy gradient: spread it first
      const out = c.label.includes('all axes') ? b.node('Mul', [y!, b.constF('spread', [3], [1, -2, 3])])[0]! : y!;
      await gradCheck(c.label, b, b.logits(out));
    });
  }

  it('ReduceMean (opset 18, axes input)', async () => {
    const b = new Builder(16, 18);
    const [y] = b.node('ReduceMean', [b.param('x', [2, 3, 4]), b.constI('axes', [0, 2])], { keepdims: attr.int(0) });
    await gradCheck('ReduceMean (opset 18, axes input)', b, b.logits(y!));
  });

  it('Reshape, Squeeze, Unsqueeze', async () => {
    const b = new Builder(17);
    const [r] = b.node('Reshape', [b.param('x', [2, 3, 4]), b.constI('shape', [4, 1, -1])]);
    const [s] = b.node('Squeeze', [r!, b.constI('axes1', [1])]);
    const [u] = b.node('Unsqueeze', [s!, b.constI('axes2', [0])]);
    await gradCheck('Reshape + Squeeze + Unsqueeze', b, b.logits(u!));
  });

  const binary = [
    { op: 'Add', a: [2, 3, 4], bd: [3, 1] },
    { op: 'Sub', a: [1, 4], bd: [3, 1] },
    { op: 'Mul', a: [2, 3, 4], bd: [4] },
    { op: 'Mul', a: [3, 4], bd: [3, 4] },
    { op: 'Div', a: [2, 3, 1], bd: [1, 3, 4] },
  ];
  for (const c of binary) {
    const label = `${c.op} ([${c.a}] and [${c.bd}])`;
    it(label, async () => {
      const b = new Builder(18);
      const bData = c.op === 'Div' ? b.awayFrom(count(c.bd), [0], -2, 2, 0.5) : b.uniform(count(c.bd));
      const [y] = b.node(c.op, [b.param('a', c.a), b.param('b', c.bd, bData)]);
      await gradCheck(label, b, b.logits(y!));
    });
  }

  it('Add (both operands the same parameter)', async () => {
    const b = new Builder(19);
    const x = b.param('x', [2, 3]);
    const [y] = b.node('Mul', [x, x]);
    const [z] = b.node('Add', [y!, x]);
    await gradCheck('Mul + Add (a parameter read three times)', b, b.logits(z!));
  });

  it('Concat (axis -2)', async () => {
    const b = new Builder(20);
    const [y] = b.node('Concat', [b.param('a', [2, 1, 3]), b.param('b', [2, 2, 3]), b.param('c', [2, 3, 3])], { axis: attr.int(-2) });
    await gradCheck('Concat (axis -2)', b, b.logits(y!));
  });

  it('Split (one output unused)', async () => {
    const b = new Builder(21);
    const [p, , r] = b.node('Split', [b.param('x', [2, 6]), b.constI('split', [1, 2, 3])], { axis: attr.int(1) }, 3);
    const [y] = b.node('Concat', [r!, p!], { axis: attr.int(1) });
    await gradCheck('Split (sizes input, one output unused)', b, b.logits(y!));
  });

  it('Slice (steps 1: Pad form)', async () => {
    const b = new Builder(22);
    const [y] = b.node('Slice', [b.param('x', [3, 5, 4]), b.constI('starts', [1, -3]), b.constI('ends', [3, 100]), b.constI('axes', [0, 2])]);
    await gradCheck('Slice (steps 1, Pad form)', b, b.logits(y!));
  });

  it('Slice (steps 2 and -1: scatter form)', async () => {
    const b = new Builder(23);
    const [y] = b.node('Slice', [b.param('x', [3, 5, 4]), b.constI('starts', [0, -1]), b.constI('ends', [5, 0]), b.constI('axes', [1, 2]), b.constI('steps', [2, -1])]);
    await gradCheck('Slice (steps 2, -1: scatter form)', b, b.logits(y!));
  });

  it('Pad (constant, negative pads)', async () => {
    const b = new Builder(24);
    const [y] = b.node('Pad', [b.param('x', [2, 3, 4]), b.constI('pads', [0, 1, -1, 0, 2, 1]), b.constF('value', [], [0.5])]);
    await gradCheck('Pad (constant, some pads negative)', b, b.logits(y!));
  });

  const pools: { label: string; op: string; x: number[]; attrs: Record<string, Attr> }[] = [
    { label: 'MaxPool (2x2 stride 2, cropped edge: tie-split form)', op: 'MaxPool', x: [2, 2, 5, 6], attrs: { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) } },
    { label: 'MaxPool (3x3 stride 2 pad 1: Indices form)', op: 'MaxPool', x: [2, 2, 6, 6], attrs: { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
    { label: 'MaxPool (2x2 stride 2, ceil_mode: Indices form)', op: 'MaxPool', x: [1, 2, 5, 5], attrs: { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), ceil_mode: attr.int(1) } },
    { label: 'AveragePool (3x3 stride 2 pad 1, pads excluded)', op: 'AveragePool', x: [2, 2, 6, 7], attrs: { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) } },
    { label: 'AveragePool (3x3 pad 1, pads included)', op: 'AveragePool', x: [2, 2, 5, 5], attrs: { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 0, 1, 2]), count_include_pad: attr.int(1) } },
    { label: 'AveragePool (2x2 stride 2, odd size)', op: 'AveragePool', x: [2, 3, 5, 5], attrs: { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) } },
  ];
  for (const c of pools) {
    it(c.label, async () => {
      const b = new Builder(25);
      const x = b.param('x', c.x, c.op === 'MaxPool' ? b.distinct(count(c.x)) : b.uniform(count(c.x)));
      const [y] = b.node(c.op, [x], c.attrs);
      await gradCheck(c.label, b, b.logits(y!), { eps: 1e-3 });
    });
  }

  it('MaxPool splits the gradient evenly across tied maxima (disjoint windows)', async () => {
    const b = new Builder(26);
    // one 4x4 plane: window 0 all equal (4 ties), window 1 two ties, windows 2 and 3 a single maximum
    const x = [1, 1, 2, 2, 1, 1, 0, 1, 3, 0, 0, 0, 0, 0, 0, 5];
    const [y] = b.node('MaxPool', [b.param('x', [1, 1, 4, 4], Float32Array.from(x))], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    const tg = buildTrainingGraph(b.logits(y!), { loss: { useLabels: true, useTeacher: false }, trainable: () => true });
    const runner = await Runner.create(tg.model, { threads: 1 });
    const labels = Tensor.from('float32', [1, 4], [0.1, 0.2, 0.3, 0.4]);
    const out = await runner.run({ x: tg.params[0]!.init, labels });
    await runner.release();
    const s = f32(out.logits);
    const z = s.reduce((a, v) => a + Math.exp(v), 0);
    const dl = [...s].map((v, i) => Math.exp(v) / z - labels.data<Float32Array>()[i]!);
    const want = [dl[0]! / 4, dl[0]! / 4, dl[1]! / 2, dl[1]! / 2, dl[0]! / 4, dl[0]! / 4, 0, 0, dl[2]!, 0, 0, 0, 0, 0, 0, dl[3]!];
    const got = [...f32(out[tg.params[0]!.gradOutput]!)];
    got.forEach((v, i) => expect(v).to.be.closeTo(want[i]!, 1e-6, `element ${i}`));
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('train: distillation loss', function () {
  /** The definition, in doubles: α·CE(s, y) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T)), averaged over rows. */
  function kd(s: number[][], y: number[][] | undefined, t: number[][] | undefined, T: number, alpha: number): number {
    const softmax = (v: number[]) => {
      const m = Math.max(...v);
      const e = v.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / z);
    };
    let total = 0;
    s.forEach((row, r) => {
      const ce = y ? -softmax(row).reduce((a, p, c) => a + y[r]![c]! * Math.log(p), 0) : 0;
      let kl = 0;
      if (t) {
        const pt = softmax(t[r]!.map((v) => v / T));
        const ps = softmax(row.map((v) => v / T));
        kl = pt.reduce((a, p, c) => a + p * Math.log(p / ps[c]!), 0);
      }
      const a = y && t ? alpha : y ? 1 : 0;
      total += a * ce + (1 - a) * T * T * kl;
    });
    return total / s.length;
  }

  const s = [
    [1.5, -0.5, 0.25],
    [0.1, 2.0, -1.0],
  ];
  const y = [
    [0, 1, 0],
    [0, 0, 1],
  ];
  const t = [
    [2.0, 0.5, -1.0],
    [-0.5, 1.0, 0.75],
  ];

  for (const [useLabels, useTeacher] of [
    [true, true],
    [true, false],
    [false, true],
  ] as const) {
    it(`matches the definition (labels ${useLabels}, teacher ${useTeacher}), and so does its gradient`, async () => {
      const [T, alpha] = [2, 0.3];
      const b = new Builder(30);
      const w = b.param('w', [2, 3], Float32Array.from(s.flat()));
      const [l] = b.g.addNode({ opType: 'Identity', inputs: [w], outputs: ['logits'] }).outputs as Value[];
      b.g.outputs.push(l!);
      const tg = buildTrainingGraph(b.model, { loss: { useLabels, useTeacher, temperature: T, alpha } });
      expect(tg.labelsInput).to.equal(useLabels ? 'labels' : undefined);
      expect(tg.teacherInput).to.equal(useTeacher ? 'teacher_logits' : undefined);
      const runner = await Runner.create(tg.model, { threads: 1 });
      const feeds: Record<string, Tensor> = { w: tg.params[0]!.init };
      if (useLabels) feeds.labels = Tensor.from('float32', [2, 3], y.flat());
      if (useTeacher) feeds.teacher_logits = Tensor.from('float32', [2, 3], t.flat());
      const out = await runner.run(feeds);
      await runner.release();
      const want = kd(s, useLabels ? y : undefined, useTeacher ? t : undefined, T, alpha);
      expect(out.loss.dims).to.deep.equal([]);
      expect(f32(out.loss)[0]!).to.be.closeTo(want, 2e-6 * Math.abs(want));
      // the gradient against central differences of the definition (doubles, h = 1e-6)
      const g = f32(out.w_grad!);
      for (let i = 0; i < 6; i++) {
        const at = (d: number) => kd(s.map((row, r) => row.map((v, c) => (r * 3 + c === i ? v + d : v))), useLabels ? y : undefined, useTeacher ? t : undefined, T, alpha);
        const fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        expect(g[i]!).to.be.closeTo(fd, 1e-5);
      }
    });
  }

  it('rejects a loss with nothing to learn from, and bad numbers', () => {
    const b = new Builder(31);
    const [l] = b.g.addNode({ opType: 'Identity', inputs: [b.param('w', [2, 3])], outputs: ['logits'] }).outputs as Value[];
    b.g.outputs.push(l!);
    expect(() => buildTrainingGraph(b.model, { loss: { useLabels: false, useTeacher: false } })).to.throw(OptionsError, 'useLabels and useTeacher are both false');
    expect(() => buildTrainingGraph(b.model, { loss: { useLabels: true, useTeacher: true, alpha: 1.5 } })).to.throw(OptionsError, 'Expected a number in [0, 1] for loss.alpha but received 1.5');
    expect(() => buildTrainingGraph(b.model, { loss: { useLabels: true, useTeacher: true, temperature: 0 } })).to.throw(OptionsError, 'Expected a positive number for loss.temperature but received 0');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('train: step graph structure', function () {
  it('names every node that has no gradient rule, and every configuration a rule does not handle, in one error', () => {
    const b = new Builder(40);
    const x = b.input('x', ['batch', 4]);
    // off the gradient path: a node without a rule is fine there
    const [pre] = b.node('Erf', [x], {}, 1, 'preprocess');
    const [h] = b.node('Gemm', [pre!, b.param('w', [4, 6])], {}, 1, 'fc');
    const [e1] = b.node('Erf', [h!], {}, 1, 'erf1');
    const [e2] = b.node('Elu', [e1!], {}, 1, 'elu1');
    const [p] = b.node('Pad', [e2!, b.constI('pads', [0, 1, 0, 1])], { mode: attr.string('reflect') }, 1, 'pad1');
    const [o] = b.node('Relu', [p!], {}, 1, 'relu1');
    b.g.outputs.push(o!);
    expect(() => buildTrainingGraph(b.model, { loss: { useLabels: true, useTeacher: false } })).to.throw(
      GraphError,
      `Cannot build a training graph for graph "g": no gradient rule for 2 nodes: node "erf1" (Erf), node "elu1" (Elu) (gradient rules exist for ${Object.keys(GRAD_RULES).join(', ')}); gradient rules do not handle node "pad1" (Pad): mode "reflect" (only "constant" has a gradient rule)`,
    );
  });

  it('runs any batch size when the student fixes its batch dim', async () => {
    const b = new Builder(41);
    const x = b.input('x', [1, 4]);
    const [h] = b.node('Gemm', [x, b.param('w', [4, 3]), b.param('c', [3])]);
    const [l] = b.g.addNode({ opType: 'Relu', inputs: [h!], outputs: ['out'] }).outputs as Value[];
    b.g.outputs.push(l!);
    const tg = buildTrainingGraph(b.model, { loss: { useLabels: true, useTeacher: false } });
    expect(tg.model.graph.value('x').shape).to.deep.equal(['batch', 4]);
    expect(tg.model.graph.outputs.map((o) => o.name)).to.deep.equal(['loss', 'logits', 'w_grad', 'c_grad']);
    const runner = await Runner.create(tg.model, { threads: 1 });
    const out = await runner.run({ x: Tensor.from('float32', [3, 4], new Float32Array(12).fill(0.5)), labels: Tensor.from('float32', [3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]), w: tg.params[0]!.init, c: tg.params[1]!.init });
    await runner.release();
    expect(out.logits.dims).to.deep.equal([3, 3]);
  });

  it('lists every rule file in the table, and nothing else', () => {
    const files = readdirSync(`${ROOT}src/train/grad`)
      .filter((f) => f.endsWith('.ts') && f !== 'table.ts')
      .map((f) => f.slice(0, -3))
      .sort();
    expect(Object.keys(GRAD_RULES).sort()).to.deep.equal(files);
  });

  it('builds the fixture CNN: inputs, outputs, parameters, buffers; any batch size; inferenceModel', async () => {
    const student = await loadModel(`${ROOT}fixtures/fmnist-cnn.onnx`);
    const before = student.graph.nodes.length;
    const tg = buildTrainingGraph(student, { loss: { useLabels: true, useTeacher: true } });
    expect(student.graph.nodes.length, 'the student is not changed').to.equal(before);
    expect(tg.params.map((p) => p.name)).to.have.length(12);
    expect(tg.buffers.map((x) => x.name)).to.deep.equal(['features.1.running_mean', 'features.1.running_var', 'features.5.running_mean', 'features.5.running_var']);
    expect(tg.dataInputs).to.deep.equal(['input']);
    const g = tg.model.graph;
    expect(g.inputs.map((v) => v.name).sort()).to.deep.equal(['input', 'labels', 'teacher_logits', ...tg.params.map((p) => p.name), ...tg.buffers.map((x) => x.name)].sort());
    expect(g.outputs.map((v) => v.name)).to.deep.equal(['loss', 'logits', ...tg.params.map((p) => p.gradOutput), ...tg.buffers.map((x) => x.updateOutput)]);
    expect(g.initializers.has('features.0.weight')).to.equal(false);
    const runner = await Runner.create(tg.model, { threads: 1, graphOptimizationLevel: 'extended' });
    const r = rng(3);
    for (const B of [5, 2]) {
      const feeds: Record<string, Tensor> = {
        input: Tensor.from('float32', [B, 1, 28, 28], Float32Array.from({ length: B * 784 }, () => r() * 2 - 1)),
        labels: Tensor.from('float32', [B, 10], Float32Array.from({ length: B * 10 }, (_, i) => (i % 10 === Math.floor(i / 10) % 10 ? 1 : 0))),
        teacher_logits: Tensor.from('float32', [B, 10], Float32Array.from({ length: B * 10 }, () => r())),
      };
      for (const p of tg.params) feeds[p.name] = p.init;
      for (const x of tg.buffers) feeds[x.name] = x.init;
      const out = await runner.run(feeds);
      expect(out.loss.dims).to.deep.equal([]);
      expect(out.logits.dims).to.deep.equal([B, 10]);
      for (const p of tg.params) expect(out[p.gradOutput]!.dims).to.deep.equal(p.init.dims);
      expect(Number.isFinite(f32(out.loss)[0]!)).to.equal(true);
    }
    await runner.release();

    // frozen BN: the step graph's logits are the inference model's, with weights written back
    const frozen = buildTrainingGraph(student, { loss: { useLabels: true, useTeacher: false }, batchNorm: 'frozen' });
    expect(frozen.buffers).to.deep.equal([]);
    const scaled = new Map(frozen.params.map((p) => [p.name, Tensor.from('float32', p.init.dims, p.init.data<Float32Array>().map((v) => v * 0.9))]));
    const stats = new Map([['features.1.running_mean', Tensor.from('float32', [16], new Float32Array(16).fill(0.1))]]);
    const trained = inferenceModel(student, scaled, stats);
    const input = Tensor.from('float32', [2, 1, 28, 28], Float32Array.from({ length: 2 * 784 }, () => r()));
    const a = await Runner.create(trained, { threads: 1 });
    const want = f32((await a.run({ input })).logits);
    await a.release();
    const frozenStats = buildTrainingGraph(inferenceModel(student, new Map(), stats), { loss: { useLabels: true, useTeacher: false }, batchNorm: 'frozen' });
    const s2 = await Runner.create(frozenStats.model, { threads: 1 });
    const feeds: Record<string, Tensor> = { input, labels: Tensor.from('float32', [2, 10], new Float32Array(20).fill(0.1)) };
    for (const p of frozenStats.params) feeds[p.name] = scaled.get(p.name)!;
    const got = f32((await s2.run(feeds)).logits);
    await s2.release();
    got.forEach((v, i) => expect(v).to.be.closeTo(want[i]!, 1e-4));
    expect(() => inferenceModel(student, new Map([['nope', scaled.get('features.0.bias')!]]), new Map())).to.throw(GraphError, 'No initializer named "nope"');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('train: gradients against PyTorch autograd', function () {
  const torch = hasPython('torch');

  /** The reference CNN, built with the IR; weights drawn with a seed. */
  function cnn(): { model: Model; weights: Record<string, { dims: number[]; data: number[] }> } {
    const b = new Builder(50, 17);
    const weights: Record<string, { dims: number[]; data: number[] }> = {};
    const w = (name: string, dims: number[], lo = -0.5, hi = 0.5) => {
      const data = b.uniform(count(dims), lo, hi);
      weights[name] = { dims, data: [...data] };
      return b.param(name, dims, data);
    };
    const x = b.input('x', ['batch', 3, 10, 10]);
    const bn = (name: string, y: Value, C: number) =>
      b.node('BatchNormalization', [y, w(`${name}.s`, [C], 0.5, 1.5), w(`${name}.b`, [C]), w(`${name}.rm`, [C]), w(`${name}.rv`, [C], 0.5, 2)], {
        epsilon: attr.float(1e-5),
        momentum: attr.float(0.9),
      })[0]!;
    const [c1] = b.node('Conv', [x, w('c1.w', [8, 3, 3, 3]), w('c1.b', [8])], { pads: attr.ints([1, 1, 1, 1]) });
    const [r1] = b.node('Relu', [bn('bn1', c1!, 8)]);
    const [p1] = b.node('MaxPool', [r1!], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
    const [dw] = b.node('Conv', [p1!, w('dw.w', [8, 1, 3, 3])], { group: attr.int(8), pads: attr.ints([1, 1, 1, 1]) });
    const [r6] = b.node('Clip', [bn('bn2', dw!, 8), b.constF('zero', [], [0]), b.constF('six', [], [6])]);
    const [pw] = b.node('Conv', [r6!, w('pw.w', [8, 8, 1, 1]), w('pw.b', [8])]);
    const [res] = b.node('Add', [pw!, p1!]);
    const [c3] = b.node('Conv', [res!, w('c3.w', [16, 8, 3, 3]), w('c3.b', [16])], { strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) });
    const [r3] = b.node('Relu', [c3!]);
    const [gap] = b.node('GlobalAveragePool', [r3!]);
    const [flat] = b.node('Flatten', [gap!]);
    const [logits] = b.g.addNode({ opType: 'Gemm', inputs: [flat!, w('fc.w', [10, 16], -1, 1), w('fc.b', [10])], attributes: { transB: attr.int(1) }, outputs: ['logits'] }).outputs as Value[];
    b.g.outputs.push(logits!);
    return { model: b.model, weights };
  }

  const SCRIPT = String.raw`
import json, sys, torch
import torch.nn.functional as F
torch.set_num_threads(2)
inp = json.load(sys.stdin)
T, alpha = inp['T'], inp['alpha']
def t(v, grad=False):
    x = torch.tensor(v['data'], dtype=torch.float64).reshape(v['dims'])
    return x.requires_grad_(grad)
out = {}
for case in inp['cases']:
    W = {k: t(v, not (k.endswith('.rm') or k.endswith('.rv'))) for k, v in inp['weights'].items()}
    x, y, te = t(case['x']), t(case['labels']), t(case['teacher'])
    training = case['training']
    def bn(h, n):
        return F.batch_norm(h, W[n + '.rm'], W[n + '.rv'], W[n + '.s'], W[n + '.b'], training=training, momentum=0.1, eps=1e-5)
    h = F.relu(bn(F.conv2d(x, W['c1.w'], W['c1.b'], padding=1), 'bn1'))
    p = F.max_pool2d(h, 2, 2)
    h = torch.clamp(bn(F.conv2d(p, W['dw.w'], None, padding=1, groups=8), 'bn2'), 0, 6)
    h = F.conv2d(h, W['pw.w'], W['pw.b']) + p
    h = F.relu(F.conv2d(h, W['c3.w'], W['c3.b'], stride=2, padding=1))
    s = F.linear(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1), W['fc.w'], W['fc.b'])
    B = s.shape[0]
    ce = -(y * F.log_softmax(s, 1)).sum() / B
    lpt = F.log_softmax(te / T, 1)
    kl = (lpt.exp() * (lpt - F.log_softmax(s / T, 1))).sum() / B
    loss = alpha * ce + (1 - alpha) * T * T * kl
    loss.backward()
    r = {'loss': loss.item(), 'logits': s.detach().flatten().tolist()}
    r['grads'] = {k: v.grad.flatten().tolist() for k, v in W.items() if v.grad is not None}
    r['stats'] = {k: v.detach().flatten().tolist() for k, v in W.items() if k.endswith('.rm') or k.endswith('.rv')}
    out[case['name']] = r
print(json.dumps(out))
`;

  it('a small CNN with a depthwise/ReLU6/residual block: loss, logits, every gradient and the running statistics (training and frozen BN)', async function () {
    if (!torch) this.skip();
    const { model, weights } = cnn();
    const [T, alpha] = [3, 0.3];
    const r = rng(51);
    const batch = (B: number) => ({
      x: { dims: [B, 3, 10, 10], data: Array.from({ length: B * 300 }, () => r() * 2 - 1) },
      labels: { dims: [B, 10], data: Array.from({ length: B * 10 }, (_, i) => (Math.floor(i / 10) * 3) % 10 === i % 10 ? 1 : 0) },
      teacher: { dims: [B, 10], data: Array.from({ length: B * 10 }, () => r() * 4 - 2) },
    });
    const cases = [
      { name: 'train6', training: true, mode: 'train' as const, ...batch(6) },
      { name: 'train3', training: true, mode: 'train' as const, ...batch(3) },
      { name: 'frozen4', training: false, mode: 'frozen' as const, ...batch(4) },
    ];
    const ref = runPython<Record<string, { loss: number; logits: number[]; grads: Record<string, number[]>; stats: Record<string, number[]> }>>(SCRIPT, { T, alpha, weights, cases });
    const isStat = (n: string) => n.endsWith('.rm') || n.endsWith('.rv');
    const errors: string[] = [];
    let worstGrad = 0;
    for (const mode of ['train', 'frozen'] as const) {
      const tg = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: true, temperature: T, alpha }, batchNorm: mode, trainable: (n) => !isStat(n) });
      expect(tg.params.map((p) => p.name).sort()).to.deep.equal(Object.keys(weights).filter((n) => !isStat(n)).sort());
      const runner = await Runner.create(tg.model, { threads: 1, graphOptimizationLevel: 'extended' });
      for (const c of cases.filter((x) => x.mode === mode)) {
        const feeds: Record<string, Tensor> = {
          x: Tensor.from('float32', c.x.dims, Float32Array.from(c.x.data)),
          labels: Tensor.from('float32', c.labels.dims, Float32Array.from(c.labels.data)),
          teacher_logits: Tensor.from('float32', c.teacher.dims, Float32Array.from(c.teacher.data)),
        };
        for (const p of tg.params) feeds[p.name] = p.init;
        for (const x of tg.buffers) feeds[x.name] = x.init;
        const out = await runner.run(feeds);
        const want = ref[c.name]!;
        const lossErr = Math.abs(f32(out.loss)[0]! - want.loss) / Math.abs(want.loss);
        const logitsErr = relErr(f32(out.logits), want.logits);
        expect(lossErr, `${c.name}: loss`).to.be.below(1e-5);
        expect(logitsErr, `${c.name}: logits`).to.be.below(1e-4);
        for (const p of tg.params) {
          const got = f32(out[p.gradOutput]!);
          const w = want.grads[p.name]!;
          if (Math.max(...w.map(Math.abs)) < 1e-12) {
            // zero in exact arithmetic (a conv bias in front of a training-mode BN): ours must be rounding noise
            errors.push(`${c.name} ${p.name} (exactly 0) max |ours| ${Math.max(...[...got].map(Math.abs)).toExponential(2)}`);
            expect(Math.max(...[...got].map(Math.abs)), `${c.name}: gradient of ${p.name}`).to.be.below(1e-5);
            continue;
          }
          const e = relErr(got, w);
          worstGrad = Math.max(worstGrad, e);
          errors.push(`${c.name} ${p.name} ${e.toExponential(2)}`);
          expect(e, `${c.name}: gradient of ${p.name}`).to.be.at.most(1e-3);
        }
        for (const x of tg.buffers) {
          const e = relErr(f32(out[x.updateOutput]!), want.stats[x.name]!);
          expect(e, `${c.name}: running statistic ${x.name}`).to.be.below(1e-5);
        }
        if (mode === 'train') expect(tg.buffers.map((x) => x.name)).to.deep.equal(['bn1.rm', 'bn1.rv', 'bn2.rm', 'bn2.rv']);
      }
      await runner.release();
    }
    console.log(`      worst gradient relative error vs PyTorch (float64): ${worstGrad.toExponential(2)}\n      ${errors.join('\n      ')}`);
  });
});
