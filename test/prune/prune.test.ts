/**
 * Pruning (src/prune). Every numeric check runs the models in onnxruntime; nothing is checked against this code's
 * own arithmetic.
 *
 * - magnitude: exact sparsity over the prunable set (global and per layer), exclusions, shared weights, activation
 *   scores, idempotence;
 * - n:m: the pattern checked by an independent walk over the weight layouts, `checkNM` on dense and pruned models;
 * - channels, the strong test: zero the channels that will go (weights, biases, BN scale and shift, depthwise
 *   filters) so their outputs are exactly 0 after the activation, then prune: the pruned model's outputs must equal
 *   the zeroed model's in onnxruntime — on the three fixtures and on small models with a residual Add, a depthwise
 *   convolution, a grouped convolution, a Concat, and Flatten → Gemm;
 * - sparse storage: loads in onnxruntime with the same outputs; the ONNX checker accepts it when python3-onnx is here;
 * - sensitivity plans; the CLI end to end, and bad arguments (exit 2).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Graph, Model, OptionsError, Tensor, attr, encodeModel, loadModel, saveModel, type Dim, type Value } from '../../src/index.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import {
  checkNM,
  densifySparseInitializers,
  planChannels,
  prune,
  pruneChannels,
  pruneMagnitude,
  pruneNM,
  removedCount,
  toSparseStorage,
  type ChannelGroup,
} from '../../src/prune/index.js';
import { hasPython, runPython } from '../helpers/python.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURES = ['fmnist-cnn', 'fmnist-resnet8', 'fmnist-mobilenet'];
const fixture = (name: string) => loadModel(join(ROOT, 'fixtures', `${name}.onnx`));
const CNN_DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');

// ---------------------------------------------------------------------------------------------------------------
// helpers

type Outputs = Record<string, RunTensor>;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randn = (n: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};
const count = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Runs a model in onnxruntime (CPU, one thread). */
async function ort(model: Model | Uint8Array, feeds: Record<string, Tensor>): Promise<{ out: Outputs; inputs: string; outputs: string }> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    const out = await r.run(feeds);
    return { out, inputs: JSON.stringify(r.inputs), outputs: JSON.stringify(r.outputs) };
  } finally {
    await r.release();
  }
}

function expectClose(got: Outputs, want: Outputs, abs = 1e-5, rel = 1e-4): void {
  expect(Object.keys(got)).to.deep.equal(Object.keys(want));
  for (const [k, w] of Object.entries(want)) {
    const g = got[k]!;
    expect(g.dims, k).to.deep.equal(w.dims);
    const a = g.data as Float32Array, b = w.data as Float32Array;
    for (let i = 0; i < b.length; i++) {
      if (!(Math.abs(a[i]! - b[i]!) <= abs + rel * Math.abs(b[i]!))) expect.fail(`"${k}"[${i}] = ${a[i]} instead of ${b[i]}`);
    }
  }
}

/** Image-like feeds for a model's first input (dims with the batch dimension set to `batch`). */
function feedsFor(model: Model, batch = 3, seed = 1): Record<string, Tensor> {
  const x = model.graph.inputs[0]!;
  const dims = x.shape!.map((d) => (typeof d === 'number' ? d : batch));
  return { [x.name]: Tensor.from('float32', dims, randn(count(dims), seed)) };
}

/** The zero count of the model's prunable weights (Conv/ConvTranspose/Gemm/MatMul input 1), by initializer name. */
function weightZeros(model: Model): Map<string, { zeros: number; size: number }> {
  const out = new Map<string, { zeros: number; size: number }>();
  for (const n of model.graph.nodes) {
    if (!['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.opType)) continue;
    const v = n.inputs[1];
    if (!v?.initializer) continue;
    const d = v.initializer.data() as Float32Array;
    out.set(v.name, { zeros: d.filter((x) => x === 0).length, size: d.length });
  }
  return out;
}

/** Replaces an initializer's data after `edit` changed a copy of it. */
function editWeight(model: Model, name: string, edit: (d: Float32Array, dims: readonly number[]) => void): void {
  const v = model.graph.initializers.get(name)!;
  const t = v.initializer!;
  const d = Float32Array.from(t.data() as Float32Array);
  edit(d, t.dims);
  v.initializer = Tensor.from('float32', t.dims, d);
}

/** Sets `d[i] = 0` for every element whose index along `axis` is in `channels`. */
function zeroAlong(d: Float32Array, dims: readonly number[], axis: number, channels: readonly number[]): void {
  const n = dims[axis]!;
  const inner = count(dims.slice(axis + 1));
  const set = new Set(channels);
  for (let i = 0; i < d.length; i++) if (set.has(Math.floor(i / inner) % n)) d[i] = 0;
}

/**
 * Zeroes what the tests' pruning will remove, so those channels are exactly 0 after the activation: each producer's
 * output slice of weight and bias, the scale and shift of a BatchNormalization right after it, and the filters and
 * biases of depthwise convolutions in the group (their channel c is the group's channel c in these models).
 */
function zeroGroups(model: Model, groups: readonly ChannelGroup[]): void {
  const g = model.graph;
  for (const grp of groups) {
    if (!grp.remove.length) continue;
    for (const { node: name, role } of grp.members) {
      const n = g.node(name);
      const zeroInput = (i: number, axis: number) => n.inputs[i]?.initializer && editWeight(model, n.inputs[i]!.name, (d, dims) => zeroAlong(d, dims, axis, grp.remove));
      if (role === 'producer' || role === 'depthwise') {
        const axis = n.opType === 'Gemm' ? (n.getInt('transB', 0) ? 0 : 1) : n.opType === 'MatMul' || n.opType === 'ConvTranspose' ? 1 : 0;
        zeroInput(1, axis);
        if (n.opType !== 'MatMul') zeroInput(2, n.opType === 'Gemm' && n.inputs[2]?.initializer?.dims.length === 2 ? 1 : 0);
        for (const u of n.output().uses) {
          if (u.node.opType === 'BatchNormalization') {
            for (const i of [1, 2]) u.node.inputs[i]?.initializer && editWeight(model, u.node.inputs[i]!.name, (d) => grp.remove.forEach((c) => (d[c] = 0)));
          }
        }
      }
    }
  }
}

// model building ------------------------------------------------------------------------------------------------

function newModel(): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  m.graph.name = 'test';
  return m;
}
function input(g: Graph, name: string, shape: Dim[]): Value {
  const v = g.declareValue(name);
  v.type = { kind: 'tensor', elemType: 'float32', shape };
  g.inputs.push(v);
  return v;
}
let seed = 100;
function weight(g: Graph, name: string, dims: number[], lo = -1): Value {
  const x = randn(count(dims), seed++);
  if (lo >= 0) for (let i = 0; i < x.length; i++) x[i] = 0.5 + Math.abs(x[i]!);
  return g.addInitializer(name, Tensor.from('float32', dims, x));
}
function conv(g: Graph, x: Value, name: string, cout: number, cin: number, { k = 3, group = 1 } = {}): Value {
  const W = weight(g, `${name}.W`, [cout, cin / group, k, k]);
  const B = weight(g, `${name}.B`, [cout]);
  const p = (k - 1) / 2;
  return g.addNode({ opType: 'Conv', name, inputs: [x, W, B], attributes: { group: attr.int(group), kernel_shape: attr.ints([k, k]), pads: attr.ints([p, p, p, p]) } }).output();
}
const op = (g: Graph, opType: string, inputs: Value[], attributes: Record<string, ReturnType<typeof attr.int>> = {}, name?: string) =>
  g.addNode({ opType, inputs, attributes, ...(name ? { name } : {}) }).output();
const relu = (g: Graph, x: Value) => op(g, 'Relu', [x]);
function bn(g: Graph, x: Value, name: string, c: number): Value {
  return g.addNode({ opType: 'BatchNormalization', name, inputs: [x, weight(g, `${name}.s`, [c]), weight(g, `${name}.b`, [c]), weight(g, `${name}.m`, [c]), weight(g, `${name}.v`, [c], 0)] }).output();
}
/** GlobalAveragePool → Flatten → Gemm(classes) as the graph output "logits". */
function head(g: Graph, x: Value, c: number, classes = 5): void {
  const f = op(g, 'Flatten', [op(g, 'GlobalAveragePool', [x])]);
  const y = g.addNode({ opType: 'Gemm', name: 'head', inputs: [f, weight(g, 'head.W', [classes, c]), weight(g, 'head.B', [classes])], attributes: { transB: attr.int(1) }, outputs: ['logits'] }).output();
  y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', classes] };
  g.outputs.push(y);
}

/** Zero the given channels, prune exactly those, and compare with onnxruntime; returns the pruned result. */
async function expectExactRemoval(model: Model, remove: Record<string, number[]>, feeds = feedsFor(model)) {
  // sparsity 0: only the groups named in `remove` lose channels
  const groups = await planChannels(model, { remove, sparsity: 0 });
  const zeroed = await loadModel(encodeModel(model));
  zeroGroups(zeroed, groups);
  const r = await pruneChannels(zeroed, { remove, sparsity: 0 });
  expect(r.modified).to.equal(true);
  const want = await ort(zeroed, feeds);
  const got = await ort(r.model, feeds);
  expect(got.inputs).to.equal(want.inputs);
  expect(got.outputs).to.equal(want.outputs);
  expectClose(got.out, want.out);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------

describe('prune', function () {
  this.timeout(120_000);

  describe('magnitude', () => {
    it('reaches the sparsity exactly over the prunable set (global), and the models run with the same inputs and outputs', async () => {
      for (const name of FIXTURES) {
        const m = await fixture(name);
        for (const s of [0.5, 0.8]) {
          const r = await pruneMagnitude(m, { sparsity: s });
          const z = [...weightZeros(r.model).values()];
          const size = z.reduce((a, b) => a + b.size, 0);
          expect(z.reduce((a, b) => a + b.zeros, 0), `${name} at ${s}`).to.equal(Math.round(s * size));
          expect(r.report.totals.prunableParams).to.equal(size);
          const feeds = feedsFor(m);
          const [a, b] = [await ort(m, feeds), await ort(r.model, feeds)];
          expect(b.inputs).to.equal(a.inputs);
          expect(b.outputs).to.equal(a.outputs);
        }
        expect(weightZeros(m).get([...weightZeros(m).keys()][0]!)!.zeros, 'the input model is unchanged').to.equal(0);
      }
    });

    it('reaches the sparsity exactly in total with scope layer, each layer within one element of its share', async () => {
      const m = await fixture('fmnist-resnet8');
      const r = await pruneMagnitude(m, { sparsity: 0.7, scope: 'layer' });
      const z = [...weightZeros(r.model).values()];
      for (const w of z) expect(Math.abs(w.zeros - 0.7 * w.size)).to.be.at.most(1);
      expect(z.reduce((a, b) => a + b.zeros, 0)).to.equal(Math.round(0.7 * z.reduce((a, b) => a + b.size, 0)));
    });

    it('leaves excluded layers (names, op types, first and last) dense, and refuses exclusions that match nothing', async () => {
      const m = await fixture('fmnist-cnn');
      const r = await pruneMagnitude(m, { sparsity: 0.6, exclude: ['Gemm'] });
      const z = weightZeros(r.model);
      expect(z.get('classifier.1.weight')!.zeros).to.equal(0);
      expect(z.get('classifier.4.weight')!.zeros).to.equal(0);
      const convs = [z.get('features.0.weight')!, z.get('features.4.weight')!];
      expect(convs.reduce((a, b) => a + b.zeros, 0)).to.equal(Math.round(0.6 * convs.reduce((a, b) => a + b.size, 0)));
      const fl = weightZeros((await pruneMagnitude(m, { sparsity: 0.6, excludeFirstLast: true })).model);
      expect(fl.get('features.0.weight')!.zeros).to.equal(0);
      expect(fl.get('classifier.4.weight')!.zeros).to.equal(0);
      let err: unknown;
      await pruneMagnitude(m, { exclude: ['NoSuchNode'] }).catch((e) => (err = e));
      expect(err).to.be.instanceOf(OptionsError);
      expect((err as Error).message).to.match(/"NoSuchNode" matches no node.*Conv/);
      err = undefined;
      await pruneMagnitude(m, { sparsity: 2 }).catch((e) => (err = e));
      expect((err as Error).message).to.match(/sparsity/);
    });

    it('prunes a weight shared by two nodes once', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 8]);
      const W = weight(g, 'W', [8, 8]);
      const h = relu(g, g.addNode({ opType: 'MatMul', name: 'mm1', inputs: [x, W] }).output());
      const y = g.addNode({ opType: 'MatMul', name: 'mm2', inputs: [h, W], outputs: ['y'] }).output();
      y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 8] };
      g.outputs.push(y);
      const r = await pruneMagnitude(m, { sparsity: 0.5 });
      expect(r.report.layers).to.have.length(1);
      expect(r.report.layers[0]!.node).to.equal('mm1, mm2');
      expect(weightZeros(r.model).get('W')!.zeros).to.equal(32);
      await ort(r.model, { x: Tensor.from('float32', [2, 8], randn(16, 3)) });
    });

    it('scores by |w| × activation norm with calibration data, still exactly', async () => {
      const m = await fixture('fmnist-cnn');
      const r = await pruneMagnitude(m, { sparsity: 0.5, score: 'activation', calibration: CNN_DATA, calibrationSamples: 64 });
      const plain = await pruneMagnitude(m, { sparsity: 0.5 });
      const z = [...weightZeros(r.model).values()];
      expect(z.reduce((a, b) => a + b.zeros, 0)).to.equal(Math.round(0.5 * z.reduce((a, b) => a + b.size, 0)));
      // the activation norms change the ranking across layers (the first conv sees the raw image)
      expect(JSON.stringify(r.report.layers.map((l) => l.nonzero))).to.not.equal(JSON.stringify(plain.report.layers.map((l) => l.nonzero)));
    });

    it('is idempotent: pruning a pruned model to the same sparsity changes nothing', async () => {
      const m = await fixture('fmnist-mobilenet');
      for (const scope of ['global', 'layer'] as const) {
        const once = await pruneMagnitude(m, { sparsity: 0.75, scope });
        const twice = await pruneMagnitude(once.model, { sparsity: 0.75, scope });
        expect(twice.modified).to.equal(false);
        expect(Buffer.from(encodeModel(twice.model)).equals(Buffer.from(encodeModel(once.model)))).to.equal(true);
      }
    });
  });

  describe('n:m', () => {
    /** Independent check: at most n non-zeros in every m consecutive input channels, per layout. */
    function holds(model: Model, n: number, m: number): boolean[] {
      const out: boolean[] = [];
      for (const node of model.graph.nodes) {
        const t = node.inputs[1]?.initializer;
        if (!t || !['Conv', 'Gemm', 'MatMul'].includes(node.opType)) continue;
        const d = t.data() as Float32Array;
        const dims = t.dims;
        // element (row, k, col): the index along the input-channel axis is k
        const [rows, K, cols] =
          node.opType === 'Conv' ? [dims[0]!, dims[1]!, count(dims.slice(2))] : node.opType === 'Gemm' && node.getInt('transB', 0) ? [dims[0]!, dims[1]!, 1] : [1, dims[0]!, dims[1]!];
        if (K % m) continue;
        let ok = true;
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            for (let k0 = 0; k0 < K; k0 += m) {
              let nz = 0;
              for (let k = k0; k < k0 + m; k++) if (d[(r * K + k) * cols + c] !== 0) nz++;
              if (nz > n) ok = false;
            }
          }
        }
        out.push(ok);
      }
      return out;
    }

    it('prunes to 2:4 along input channels; checkNM accepts it and refuses the dense model', async () => {
      for (const name of FIXTURES) {
        const m = await fixture(name);
        expect(checkNM(m).ok, name).to.equal(false);
        const r = await pruneNM(m);
        expect(holds(r.model, 2, 4).every(Boolean), name).to.equal(true);
        const check = checkNM(r.model);
        expect(check.ok).to.equal(true);
        expect(check.layers.filter((l) => !l.applicable).every((l) => l.k % 4 !== 0)).to.equal(true);
        const feeds = feedsFor(m);
        expect((await ort(r.model, feeds)).outputs).to.equal((await ort(m, feeds)).outputs);
        const again = await pruneNM(r.model);
        expect(again.modified).to.equal(false);
      }
    });

    it('follows transB in Gemm and handles other patterns (1:4, 2:8)', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 16]);
      const h = relu(g, g.addNode({ opType: 'Gemm', name: 'g0', inputs: [x, weight(g, 'B0', [16, 8])], attributes: { transB: attr.int(0) } }).output());
      const y = g.addNode({ opType: 'Gemm', name: 'g1', inputs: [h, weight(g, 'B1', [4, 8])], attributes: { transB: attr.int(1) }, outputs: ['y'] }).output();
      y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 4] };
      g.outputs.push(y);
      for (const [n, mm] of [[2, 4], [1, 4], [2, 8]] as const) {
        const r = await pruneNM(m, { pattern: `${n}:${mm}` });
        expect(holds(r.model, n, mm)).to.deep.equal([true, true]);
        expect(holds(m, n, mm)).to.deep.equal([false, false]);
        expect(checkNM(r.model, n, mm).ok).to.equal(true);
        const z = weightZeros(r.model);
        expect(z.get('B0')!.zeros).to.equal(128 - (128 / mm) * n);
      }
      await ort((await pruneNM(m)).model, { x: Tensor.from('float32', [2, 16], randn(32, 9)) });
    });
  });

  describe('channels', () => {
    it('keeps a multiple of 8 channels by default, so onnxruntime keeps every Conv and MaxPool on its blocked (NCHWc) path', async () => {
      expect(removedCount(32, 0.3, 8)).to.equal(8);
      expect(removedCount(32, 0.3, 1)).to.equal(9);
      expect(removedCount(16, 0.3, 8)).to.equal(0); // 12 kept rounds to 16
      expect(removedCount(6, 0.5, 8)).to.equal(3); // smaller than the block: plain floor
      const model = await loadModel(join(ROOT, 'fixtures/fmnist-cnn.onnx'));
      const opsOf = async (m: Model) => {
        const dir = mkdtempSync(join(tmpdir(), 'onnxpress-nchwc-'));
        try {
          const file = join(dir, 'optimized.onnx');
          await (await Runner.create(m, { optimizedModelFilePath: file, threads: 1 })).release();
          return (await loadModel(file)).graph.nodes.map((n) => `${n.domain}:${n.opType}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
      const blocked = (ops: string[]) => ops.filter((o) => /:(Conv|MaxPool)$/.test(o)).every((o) => o.startsWith('com.microsoft.nchwc:'));
      const aligned = (await prune(model, { method: 'channels', sparsity: 0.3 })).model;
      const ragged = (await prune(model, { method: 'channels', sparsity: 0.3, channelMultiple: 1 })).model;
      for (const n of aligned.graph.nodes.filter((x) => x.opType === 'Conv')) expect(n.inputs[1]!.initializer!.dims[0]! % 8, n.name).to.equal(0);
      expect(blocked(await opsOf(aligned)), 'aligned: all blocked').to.equal(true);
      expect(blocked(await opsOf(ragged)), 'ragged (23 channels): some Conv or MaxPool leaves the blocked path').to.equal(false);
    });

    it('fixtures: removing zeroed channels gives the same outputs in onnxruntime, and the model is much smaller', async () => {
      for (const name of FIXTURES) {
        const m = await fixture(name);
        const plan = await planChannels(m, { sparsity: 0.5 });
        expect(plan.filter((g) => g.remove.length).length, name).to.be.greaterThan(0);
        const zeroed = await loadModel(encodeModel(m));
        zeroGroups(zeroed, plan);
        const r = await pruneChannels(zeroed, { sparsity: 0.5 });
        // the ranking finds the zeroed channels by itself
        expect(r.groups.map((g) => g.remove)).to.deep.equal(plan.map((g) => g.remove));
        const feeds = feedsFor(m, 4, 7);
        const want = await ort(zeroed, feeds);
        const got = await ort(r.model, feeds);
        expect(got.inputs).to.equal(want.inputs);
        expect(got.outputs).to.equal(want.outputs);
        expectClose(got.out, want.out);
        const [p0, p1] = r.report.totals.modelParams;
        expect(p1 / p0, name).to.be.below(0.55);
      }
    });

    it('residual Add: channels tied across the Add are removed together', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 3, 8, 8]);
      const a = relu(g, conv(g, x, 'A', 8, 3));
      const b = conv(g, relu(g, conv(g, a, 'B1', 6, 8)), 'B2', 8, 6);
      const s = relu(g, op(g, 'Add', [b, a]));
      head(g, relu(g, conv(g, s, 'C', 4, 8)), 4);
      const groups = await planChannels(m, { sparsity: 0.5 });
      const tied = groups.find((gr) => gr.producers.includes('A'))!;
      expect(tied.producers.sort()).to.deep.equal(['A', 'B2']);
      const r = await expectExactRemoval(m, { A: [1, 3, 6], B1: [0, 5] });
      const row = (n: string) => r.report.layers.find((l) => l.node === n)!;
      expect(row('A').channelsOut).to.deep.equal([8, 5]);
      expect(row('B2').channelsOut).to.deep.equal([8, 5]);
      expect(row('C').channelsIn).to.deep.equal([8, 5]);
      expect(row('B1').channelsOut).to.deep.equal([6, 4]);
    });

    it('depthwise convolution follows its input channels (weights, bias, group); BN and per-channel Mul are sliced', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 3, 8, 8]);
      const a = relu(g, bn(g, conv(g, x, 'A', 8, 3), 'bnA', 8));
      const scaled = op(g, 'Mul', [a, weight(g, 'scale', [8, 1, 1])]);
      const d = relu(g, conv(g, scaled, 'DW', 8, 8, { group: 8 }));
      head(g, relu(g, conv(g, d, 'B', 6, 8, { k: 1 })), 6);
      const r = await expectExactRemoval(m, { A: [0, 2, 5, 7], B: [1] });
      const dw = r.model.graph.node('DW');
      expect(dw.getInt('group')).to.equal(4);
      expect(dw.inputs[1]!.initializer!.dims).to.deep.equal([4, 1, 3, 3]);
      expect(r.model.graph.initializers.get('scale')!.initializer!.dims).to.deep.equal([4, 1, 1]);
    });

    it('grouped convolution: its channels are left with a note, the rest is pruned', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 3, 8, 8]);
      const a = relu(g, conv(g, x, 'A', 8, 3));
      const gc = relu(g, conv(g, a, 'G', 8, 8, { group: 2 }));
      head(g, relu(g, conv(g, gc, 'B', 6, 8)), 6);
      const groups = await planChannels(m, { sparsity: 0.5 });
      expect(groups.find((gr) => gr.producers.includes('A'))!.frozen).to.match(/grouped convolution \(group 2\)/);
      const r = await expectExactRemoval(m, { B: [0, 4, 5] });
      expect(r.notes!.join('\n')).to.match(/"G".*grouped convolution/);
      let err: unknown;
      await pruneChannels(m, { remove: { A: [0] } }).catch((e) => (err = e));
      expect((err as Error).message).to.match(/remove: the channels of "A" cannot be removed: .*grouped/);
    });

    it('Concat: each input keeps its offset in the consumer', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 3, 8, 8]);
      const a = relu(g, conv(g, x, 'A', 6, 3));
      const b = relu(g, conv(g, x, 'B', 4, 3, { k: 1 }));
      const cat = op(g, 'Concat', [a, x, b], { axis: attr.int(1) });
      head(g, relu(g, conv(g, cat, 'C', 5, 13)), 5);
      const r = await expectExactRemoval(m, { A: [0, 2], B: [3], C: [4] });
      const row = r.report.layers.find((l) => l.node === 'C')!;
      expect(row.channelsIn).to.deep.equal([13, 10]);
      expect(row.channelsOut).to.deep.equal([5, 4]);
    });

    it('Flatten → Gemm drops the matching blocks of H·W features (transB 0 and 1)', async () => {
      for (const transB of [0, 1]) {
        const m = newModel();
        const g = m.graph;
        const x = input(g, 'x', ['N', 2, 6, 6]);
        const a = op(g, 'MaxPool', [relu(g, bn(g, conv(g, x, 'A', 6, 2), 'bnA', 6))], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) });
        const f = op(g, 'Flatten', [a], { axis: attr.int(1) });
        const W1 = weight(g, 'W1', transB ? [16, 54] : [54, 16]);
        const h = relu(g, g.addNode({ opType: 'Gemm', name: 'fc1', inputs: [f, W1, weight(g, 'b1', [16])], attributes: { transB: attr.int(transB) } }).output());
        const y = g.addNode({ opType: 'Gemm', name: 'fc2', inputs: [h, weight(g, 'W2', [3, 16]), weight(g, 'b2', [3])], attributes: { transB: attr.int(1) }, outputs: ['logits'] }).output();
        y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 3] };
        g.outputs.push(y);
        const r = await expectExactRemoval(m, { A: [1, 4], fc1: [0, 5, 7, 15] });
        expect(r.model.graph.initializers.get('W1')!.initializer!.dims).to.deep.equal(transB ? [12, 36] : [36, 12]);
      }
    });

    it('ConvTranspose and MatMul (with a per-channel Add bias) as producers and consumers', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 3, 5, 5]);
      const ct = g.addNode({ opType: 'ConvTranspose', name: 'T', inputs: [x, weight(g, 'T.W', [3, 6, 3, 3]), weight(g, 'T.B', [6])], attributes: { kernel_shape: attr.ints([3, 3]) } }).output();
      const t2 = g.addNode({ opType: 'ConvTranspose', name: 'T2', inputs: [relu(g, ct), weight(g, 'T2.W', [6, 2, 1, 1])] }).output();
      head(g, relu(g, conv(g, relu(g, t2), 'C', 4, 2)), 4);
      const x2 = input(g, 'x2', ['N', 4, 8]);
      const h = relu(g, op(g, 'Add', [g.addNode({ opType: 'MatMul', name: 'mm1', inputs: [x2, weight(g, 'W1', [8, 10])] }).output(), weight(g, 'b1', [10])]));
      const y2 = g.addNode({ opType: 'MatMul', name: 'mm2', inputs: [h, weight(g, 'W2', [10, 6])], outputs: ['y2'] }).output();
      y2.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 4, 6] };
      g.outputs.push(y2);
      const feeds = { ...feedsFor(m, 2, 3), x2: Tensor.from('float32', [2, 4, 8], randn(64, 4)) };
      // zeroGroups zeroes MatMul producers' columns; the Add bias of mm1 is zeroed here
      const zeroBias = (mm: Model) => editWeight(mm, 'b1', (d) => [0, 3, 9].forEach((c) => (d[c] = 0)));
      const groups = await planChannels(m, { remove: { T: [2, 5], mm1: [0, 3, 9] }, sparsity: 0 });
      const zeroed = await loadModel(encodeModel(m));
      zeroGroups(zeroed, groups);
      zeroBias(zeroed);
      const r = await pruneChannels(zeroed, { remove: { T: [2, 5], mm1: [0, 3, 9] }, sparsity: 0 });
      expectClose((await ort(r.model, feeds)).out, (await ort(zeroed, feeds)).out);
      const row = (n: string) => r.report.layers.find((l) => l.node === n)!;
      expect(row('T').channelsOut).to.deep.equal([6, 4]);
      expect(row('T2').channelsIn).to.deep.equal([6, 4]);
      expect(row('mm2').channelsIn).to.deep.equal([10, 7]);
      expect(r.model.graph.initializers.get('b1')!.initializer!.dims).to.deep.equal([7]);
    });

    it('with calibration data, folds the mean of removed channels into the next biases (exact for constant channels)', async () => {
      // channels 1 and 4 of A are constant (zero weights, positive bias): replacing them by their mean is exact
      // for a 1×1 Conv and for Flatten → Gemm readers; without compensation it is not
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 2, 4, 4]);
      const a = relu(g, conv(g, x, 'A', 6, 2));
      editWeight(m, 'A.W', (d, dims) => zeroAlong(d, dims, 0, [1, 4]));
      editWeight(m, 'A.B', (d) => ((d[1] = 0.7), (d[4] = 0.3)));
      const c = relu(g, conv(g, a, 'C', 3, 6, { k: 1 }));
      const f = op(g, 'Flatten', [a], { axis: attr.int(1) });
      const fc = g.addNode({ opType: 'Gemm', name: 'fc', inputs: [f, weight(g, 'fcW', [4, 96])], attributes: { transB: attr.int(1) } }).output();
      const y = g.addNode({ opType: 'Concat', inputs: [op(g, 'Flatten', [c], { axis: attr.int(1) }), fc], attributes: { axis: attr.int(1) }, outputs: ['y'] }).output();
      y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 52] };
      g.outputs.push(y);
      const feeds = { x: Tensor.from('float32', [3, 2, 4, 4], randn(96, 5)) };
      const calibration = { size: 3, inputNames: ['x'], sampleDims: { x: [2, 4, 4] }, hasLabels: false, async *batches() { yield { feeds: { x: { dtype: 'float32' as const, dims: [3, 2, 4, 4], data: randn(96, 6) } }, size: 3 }; } };
      const want = (await ort(m, feeds)).out;
      const r = await pruneChannels(m, { remove: { A: [1, 4] }, sparsity: 0, calibration });
      expect(r.report.layers.find((l) => l.node === 'A')!.channelsOut).to.deep.equal([6, 4]);
      expectClose((await ort(r.model, feeds)).out, want);
      const plain = await pruneChannels(m, { remove: { A: [1, 4] }, sparsity: 0 });
      let differs = false;
      try {
        expectClose((await ort(plain.model, feeds)).out, want);
      } catch {
        differs = true;
      }
      expect(differs).to.equal(true);
      // and the activation ranking finds the two constant channels by itself (zero variance)
      expect((await planChannels(m, { sparsity: 0.34, calibration })).find((gr) => gr.producers.includes('A'))!.remove).to.deep.equal([1, 4]);
    });

    it('leaves channels that reach a Reshape, a graph output or a graph input, and says why', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', ['N', 4, 4, 4]);
      const a = relu(g, conv(g, x, 'A', 4, 4));
      const sum = op(g, 'Add', [a, x]); // tied to the graph input: cannot shrink
      const b = conv(g, sum, 'B', 6, 4);
      const shape = g.addInitializer('shape', Tensor.from('int64', [2], [0n, -1n]));
      const y = g.addNode({ opType: 'Reshape', inputs: [relu(g, b), shape], outputs: ['y'] }).output();
      y.type = { kind: 'tensor', elemType: 'float32', shape: ['N', 96] };
      g.outputs.push(y);
      const r = await pruneChannels(m, { sparsity: 0.5 });
      expect(r.modified).to.equal(false);
      const notes = r.notes!.join('\n');
      expect(notes).to.match(/node "A".*combines the channels with "x"/);
      expect(notes).to.match(/node "B".*Reshape/);
      expect((await pruneChannels(m, { sparsity: 0 })).modified).to.equal(false);
    });
  });

  describe('sparse storage', () => {
    it('writes pruned weights as sparse_initializer; onnxruntime loads it and gives the same outputs', async () => {
      const m = await fixture('fmnist-cnn');
      const dense = (await pruneMagnitude(m, { sparsity: 0.8 })).model;
      const stored = await loadModel(encodeModel(dense));
      const rep = toSparseStorage(stored, { mode: 'auto', indices: 'int64' });
      expect(rep.weights.filter((w) => w.stored === 'sparse').map((w) => w.weight)).to.include('classifier.1.weight');
      expect(rep.rawBytes[1]).to.be.below(rep.rawBytes[0] * 0.7);
      expect(stored.graph.sparseInitializers.length).to.be.greaterThan(0);
      const feeds = feedsFor(m, 5, 11);
      expectClose((await ort(stored, feeds)).out, (await ort(dense, feeds)).out, 0, 0);
      const dir = mkdtempSync(join(tmpdir(), 'prune-'));
      try {
        const file = join(dir, 'sparse.onnx');
        await saveModel(stored, file);
        const back = await loadModel(file);
        expect(back.graph.sparseInitializers.length).to.equal(stored.graph.sparseInitializers.length);
        expectClose((await ort(back, feeds)).out, (await ort(dense, feeds)).out, 0, 0);
        expect(densifySparseInitializers(back)).to.equal(stored.graph.sparseInitializers.length);
        for (const [name, v] of dense.graph.initializers) {
          expect(Buffer.from(back.graph.initializers.get(name)!.initializer!.bytes()).equals(Buffer.from(v.initializer!.bytes())), name).to.equal(true);
        }
        // the passes read sparse initializers as dense weights: pruning again to 80% keeps every weight
        const again = await pruneMagnitude(stored, { sparsity: 0.8 });
        expect(again.report.totals.zeros).to.deep.equal([again.report.totals.zeros[1], Math.round(0.8 * again.report.totals.prunableParams)]);
        expect(again.notes!.join()).to.match(/sparse initializer\(s\) as dense/);
        expectClose((await ort(again.model, feeds)).out, (await ort(dense, feeds)).out, 0, 0);
        // compact (non-standard) indices: smaller, and onnxruntime reads them too
        const compact = await loadModel(encodeModel(dense));
        const crep = toSparseStorage(compact, { mode: 'auto', indices: 'compact' });
        expect(crep.rawBytes[1]).to.be.below(rep.rawBytes[1]);
        expectClose((await ort(compact, feeds)).out, (await ort(dense, feeds)).out, 0, 0);
        if (hasPython('onnx')) {
          // the structural check accepts it; onnx's strict type inference (full_check) would not: it types a sparse
          // initializer as sparse_tensor, which Conv and Gemm do not take (onnxruntime densifies it instead)
          const r = runPython<{ ok: boolean }>('import json,sys,onnx; p=json.load(sys.stdin); onnx.checker.check_model(onnx.load(p)); print(json.dumps({"ok": True}))', file);
          expect(r.ok).to.equal(true);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('bitmask storage', () => {
    it('stores 80%-pruned weights in at most 0.4× the file; onnxruntime gives identical outputs and folds it away', async function () {
      this.timeout(30_000);
      const dir = mkdtempSync(join(tmpdir(), 'prune-bitmask-'));
      try {
        for (const name of FIXTURES) {
          const m = await fixture(name);
          const dense = (await pruneMagnitude(m, { sparsity: 0.8 })).model;
          const stored = await loadModel(encodeModel(dense));
          const rep = toSparseStorage(stored, { mode: 'auto' });
          expect(rep.indices).to.equal('auto');
          expect(rep.weights.filter((w) => w.stored === 'bitmask').length, name).to.be.greaterThan(rep.weights.length / 2);
          expect(stored.graph.sparseInitializers, name).to.have.length(0);
          const file = join(dir, `${name}.onnx`);
          await saveModel(stored, file);
          expect(statSync(file).size / encodeModel(m).byteLength, name).to.be.at.most(0.4);
          const feeds = feedsFor(m, 3, 5);
          expectClose((await ort(new Uint8Array(readFileSync(file)), feeds)).out, (await ort(dense, feeds)).out, 0, 0);
          // onnxruntime computes the weights once at load: its optimized graph is the dense model's
          const ops = async (x: Model | string) => {
            const opt = join(dir, 'opt.onnx');
            await (await Runner.create(x, { optimizedModelFilePath: opt })).release();
            return (await loadModel(opt)).graph.nodes.map((n) => n.opType).sort().join();
          };
          expect(await ops(file), name).to.equal(await ops(dense));
          // back to dense: the same weights, bit for bit
          const back = await loadModel(file);
          expect(densifySparseInitializers(back)).to.equal(rep.weights.filter((w) => w.stored !== 'dense').length);
          expect(back.graph.nodes.map((n) => n.opType)).to.deep.equal(dense.graph.nodes.map((n) => n.opType));
          for (const [w, v] of dense.graph.initializers) {
            expect(Buffer.from(back.graph.initializers.get(w)!.initializer!.bytes()).equals(Buffer.from(v.initializer!.bytes())), w).to.equal(true);
          }
          if (hasPython('onnx')) {
            const r = runPython<{ ok: boolean }>('import json,sys,onnx; p=json.load(sys.stdin); onnx.checker.check_model(onnx.load(p), full_check=True); print(json.dumps({"ok": True}))', file);
            expect(r.ok, name).to.equal(true);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('prune()', () => {
    it('plans per-layer sparsities from sensitivity and still reaches the target exactly', async () => {
      const m = await fixture('fmnist-cnn');
      const r = await prune(m, { method: 'magnitude', sparsity: 0.8, plan: 'sensitivity', data: CNN_DATA, sensitivitySamples: 64, sensitivityLevels: [0.5, 0.9] });
      const z = [...weightZeros(r.model).values()];
      expect(z.reduce((a, b) => a + b.zeros, 0)).to.equal(Math.round(0.8 * z.reduce((a, b) => a + b.size, 0)));
      expect(r.report.sensitivity!.result.metric).to.equal('top1');
      expect(r.report.sensitivity!.result.layers).to.have.length(4);
      const ch = await prune(m, { method: 'channels', sparsity: 0.5, plan: 'sensitivity', data: CNN_DATA, sensitivitySamples: 64, sensitivityLevels: [0.5] });
      expect(ch.report.groups!.some((g) => g.remove.length)).to.equal(true);
    });

    it('refuses options of another method, and sensitivity without data', async () => {
      const m = await fixture('fmnist-cnn');
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ method: 'magnitude', pattern: '2:4' }, /pattern applies to method 'n:m'/],
        [{ method: 'channels', plan: 'sensitivity' }, /plan 'sensitivity' needs data/],
        [{ method: 'channels', sparseStorage: 'auto' }, /sparseStorage applies/],
      ];
      for (const [o, re] of cases) {
        let err: unknown;
        await prune(m, o as never).catch((e) => (err = e));
        expect(err, JSON.stringify(o)).to.be.instanceOf(OptionsError);
        expect((err as Error).message).to.match(re);
      }
    });

    it('calls finetune with the pruned and original models and keeps the zeros', async () => {
      const m = await fixture('fmnist-cnn');
      let seen: [Model, Model] | undefined;
      const r = await prune(m, {
        sparsity: 0.5,
        finetune: async (pruned, original) => {
          seen = [pruned, original];
          // a "fine-tuning" that moves every weight
          for (const v of pruned.graph.initializers.values()) {
            const d = Float32Array.from(v.initializer!.data() as Float32Array, (x) => x + 0.01);
            v.initializer = Tensor.from('float32', v.initializer!.dims, d);
          }
          return pruned;
        },
      });
      expect(seen![1]).to.equal(m);
      expect(r.report.finetuned).to.equal(true);
      const z = [...weightZeros(r.model).values()];
      expect(z.reduce((a, b) => a + b.zeros, 0)).to.equal(Math.round(0.5 * z.reduce((a, b) => a + b.size, 0)));
    });
  });

  describe('CLI', () => {
    const optimize = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), 'prune-cli-'))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('prunes channels end to end and prints the table (text) or one JSON document', async () => {
      const out = join(dir, 'cnn-channels.onnx');
      const r = optimize('prune', 'fixtures/fmnist-cnn.onnx', '-o', out, '--method', 'channels', '--sparsity', '0.5');
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/in channels\s+out channels/);
      expect(r.stdout).to.match(/Parameters: 106,058 → /);
      const m = await loadModel(out);
      const feeds = feedsFor(m, 2);
      expect((await ort(m, feeds)).out.logits!.dims).to.deep.equal([2, 10]);
      const out2 = join(dir, 'cnn-mag.onnx');
      const j = optimize('prune', 'fixtures/fmnist-cnn.onnx', '-o', out2, '--sparsity', '0.8', '--json');
      expect(j.status, j.stderr).to.equal(0);
      const doc = JSON.parse(j.stdout) as { report: { totals: { sparsity: number }; storage: { rawBytes: number[] } }; bytes: { ratio: number } };
      expect(doc.report.totals.sparsity).to.be.closeTo(0.8, 1e-4);
      expect(doc.bytes.ratio).to.be.below(0.75);
      expect((await loadModel(out2)).graph.nodes.filter((n) => n.opType === 'BitShift').length).to.be.greaterThan(0);
    });

    it('exits 2 on bad arguments and writes nothing', () => {
      const out = join(dir, 'bad.onnx');
      for (const args of [
        ['--sparsity', '2'],
        ['--method', 'random'],
        ['--plan', 'sensitivity'],
        ['--method', 'n:m', '--pattern', 'two'],
        ['--exclude', 'NoSuchNode'],
        ['--epochs', '2'],
        ['--lr', '0.01'],
      ]) {
        const r = optimize('prune', 'fixtures/fmnist-cnn.onnx', '-o', out, ...args);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
        expect(r.stderr).to.match(/^optimize: error/);
        expect(existsSync(out)).to.equal(false);
      }
      expect(optimize('prune', 'fixtures/fmnist-cnn.onnx').status).to.equal(2);
    });

    it('fine-tunes by distillation from the original with --finetune', async () => {
      const out = join(dir, 'cnn-ft.onnx');
      const r = optimize('prune', 'fixtures/fmnist-cnn.onnx', '-o', out, '--method', 'channels', '--finetune', CNN_DATA, '--epochs', '1', '--json');
      expect(r.status, r.stderr).to.equal(0);
      expect((JSON.parse(r.stdout) as { report: { finetuned: boolean } }).report.finetuned).to.equal(true);
      const m = await loadModel(out);
      expect((await ort(m, feedsFor(m, 2))).out.logits!.dims).to.deep.equal([2, 10]);
    });

    it('exits 1 when no channel can be removed, and still writes the model', () => {
      const out = join(dir, 'nothing.onnx');
      const r = optimize('prune', 'fixtures/fmnist-cnn.onnx', '-o', out, '--method', 'channels', '--exclude', 'Conv,Gemm');
      expect(r.status, r.stderr).to.equal(1);
      expect(r.stdout).to.match(/Goal not met: no channel group could shrink/);
      expect(existsSync(out)).to.equal(true);
    });
  });
});
