/**
 * `convert.fp16`. Every numeric check is against onnxruntime running the float32 model (or against the outputs
 * PyTorch stored with the conformance models), never against this code:
 *
 * - the Fashion-MNIST CNN: top-1 on the full t10k set (10,000 images) within 0.1 points of float, file ≤ 0.51×;
 *   resnet8 and mobilenet agree with float on 512 images; keepIoTypes gives float32 IO and close outputs, the
 *   default gives float16 IO;
 * - the PyTorch-exported conformance models (pytorch-converted/, pytorch-operator/) that onnxruntime runs: the
 *   converted models agree with PyTorch's stored outputs within float16 tolerance;
 * - clamping (1e6 → 65504, named), subnormals, blocked ops and nodes with Casts at their borders, a float32
 *   initializer shared with a blocked node, Resize scales, shape arithmetic kept float32, If and Loop subgraphs
 *   (models built with onnx.helper);
 * - the ONNX checker (full_check) on every converted model; determinism; a second run changes nothing.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fp16Options, fp16Pass, toFloat16 } from '../../src/convert/fp16.js';
import { OptionsError } from '../../src/errors.js';
import { compareOutputs, evaluate } from '../../src/eval/accuracy.js';
import { loadDataset, type FileDataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import { float16ToFloat32, fromFloat32, toFloat32 } from '../../src/onnx/codecs.js';
import type { TypedArray } from '../../src/onnx/dtype.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Model, type Dim, type Graph, type Node, type Value } from '../../src/onnx/ir.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { loadNamedTensor } from '../../src/onnx/tensorfile.js';
import { runPass } from '../../src/pass.js';
import { conformanceCases } from '../helpers/conformance.js';
import { hasPython, runPython } from '../helpers/python.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const PRE = { scale: 0.00392156862745098, mean: [0.286], std: [0.353] };
const T10K: IdxDescriptor = { format: 'idx', images: `${FASHION}/t10k-images-idx3-ubyte.gz`, labels: `${FASHION}/t10k-labels-idx1-ubyte.gz`, input: { layout: 'NCHW', ...PRE } };

const tmp = mkdtempSync(join(tmpdir(), 'onnxpress-fp16-'));
/** Every converted model saved by the tests, for the checker at the end. */
const saved: string[] = [];
let counter = 0;

async function save(model: Model, name: string): Promise<string> {
  const file = join(tmp, `${String(counter++).padStart(2, '0')}-${name}.onnx`);
  await saveModel(model, file);
  saved.push(file);
  return file;
}

function input(g: Graph, name: string, shape: Dim[], elemType: 'float32' | 'int64' = 'float32'): Value {
  const v = g.declareValue(name);
  v.type = { kind: 'tensor', elemType, shape };
  g.inputs.push(v);
  return v;
}

function output(g: Graph, v: Value, shape: Dim[]): void {
  v.type = { kind: 'tensor', elemType: 'float32', shape };
  g.outputs.push(v);
}

function newModel(opset = 13): Model {
  const m = new Model();
  m.irVersion = 7; // what python3-onnx 1.12's checker knows
  m.opsetImports.set('', opset);
  m.graph.name = 'test';
  return m;
}

/** Output data as float32 (float16 outputs decoded). */
function floats(t: RunTensor): Float32Array {
  const d = t.data as TypedArray;
  return d instanceof Float32Array ? d : toFloat32(d, t.dtype, d.length);
}

/** Feeds a float32 array to an input of either float type. */
function feed(model: Model, name: string, dims: number[], data: Float32Array): RunTensor {
  const v = model.graph.inputs.find((i) => i.name === name)!;
  return v.elemType === 'float16' ? { dtype: 'float16', dims, data: fromFloat32(data, 'float16') } : { dtype: 'float32', dims, data };
}

async function run(model: Model, feeds: Record<string, RunTensor | Tensor>): Promise<Record<string, RunTensor>> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    return await r.run(feeds);
  } finally {
    await r.release();
  }
}

/** max |a − b| / max(1, max |ref|), NaN where the two agree on NaN. */
function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).to.equal(ref.length);
  let scale = 1;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i]!)) scale = Math.max(scale, Math.abs(ref[i]!));
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = got[i]!;
    const b = ref[i]!;
    if (Number.isNaN(b) && Number.isNaN(a)) continue;
    if (a === b) continue; // infinities
    worst = Math.max(worst, Math.abs(a - b) / scale);
  }
  return worst;
}

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

function castsAround(node: Node): { before: (string | undefined)[]; after: string[] } {
  return {
    before: node.inputs.map((v) => (v?.producer?.opType === 'Cast' ? `Cast(to=${v.producer.getInt('to')})` : v?.producer?.opType)),
    after: node.outputs.flatMap((o) => (o ? o.uses.map((u) => (u.node.opType === 'Cast' ? `Cast(to=${u.node.getInt('to')})` : u.node.opType)) : [])),
  };
}

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('convert.fp16', function () {
  this.timeout(120_000);

  describe('Fashion-MNIST fixtures', function () {
    let test: FileDataset;
    before(async function () {
      if (!statSync(T10K.images, { throwIfNoEntry: false })) this.skip();
      test = await loadDataset(T10K, { inputNames: ['input'] });
    });

    it('CNN: top-1 on all 10,000 t10k images within 0.1 points of float; file ≤ 0.51× float32', async () => {
      const float = await loadModel('fixtures/fmnist-cnn.onnx');
      const { model: half, modified, clamped } = toFloat16(float);
      expect(modified).to.equal(true);
      expect(clamped).to.deep.equal([]);
      const file = await save(half, 'cnn');
      const ratio = statSync(file).size / statSync('fixtures/fmnist-cnn.onnx').size;
      const a = await evaluate(float, test, { threads: 1, batchSize: 250 });
      const b = await evaluate(half, test, { threads: 1, batchSize: 250 });
      expect(b.samples).to.equal(10_000);
      expect(Math.abs(a.top1 - b.top1), `float ${a.top1}, float16 ${b.top1}`).to.be.at.most(0.001);
      expect(b.nonFinite).to.equal(0);
      expect(ratio).to.be.at.most(0.51);
      // every initializer is float16 and the IO too (keepIoTypes is off)
      expect([...half.graph.initializers.values()].map((v) => v.initializer!.dtype)).to.satisfy((d: string[]) => d.every((x) => x === 'float16'));
      const r = await Runner.create(half);
      expect(r.inputs.map((i) => i.dtype)).to.deep.equal(['float16']);
      expect(r.outputs.map((o) => o.dtype)).to.deep.equal(['float16']);
      await r.release();
    });

    it('keepIoTypes: float32 inputs and outputs, Casts at the borders, outputs close to float', async () => {
      const float = await loadModel('fixtures/fmnist-cnn.onnx');
      const { model: half } = toFloat16(float, { keepIoTypes: true });
      await save(half, 'cnn-keepio');
      expect(half.graph.inputs.map((v) => v.elemType)).to.deep.equal(['float32']);
      expect(half.graph.outputs.map((v) => [v.name, v.elemType])).to.deep.equal([['logits', 'float32']]);
      expect(half.graph.outputs[0]!.producer!.opType).to.equal('Cast');
      expect(half.graph.inputs[0]!.uses.map((u) => u.node.opType)).to.deep.equal(['Cast']);
      const c = await compareOutputs(float, half, test, { limit: 512, threads: 1 });
      expect(c.top1Agreement).to.be.at.least(0.995);
      expect(c.minCosine).to.be.above(0.999);
      expect(c.maxAbsDiff).to.be.below(0.05);
    });

    for (const name of ['resnet8', 'mobilenet']) {
      it(`${name}: runs in onnxruntime and agrees with float on 512 images`, async () => {
        const float = await loadModel(`fixtures/fmnist-${name}.onnx`);
        const { model: half } = toFloat16(float);
        const file = await save(half, name);
        const c = await compareOutputs(float, half, test, { limit: 512, threads: 1 });
        expect(c.top1Agreement).to.be.at.least(0.99);
        expect(c.minCosine).to.be.above(0.999);
        // mobilenet is small: its graph (Clip constants, names) is a larger share of the file
        expect(statSync(file).size / statSync(`fixtures/fmnist-${name}.onnx`).size).to.be.below(name === 'mobilenet' ? 0.56 : 0.51);
      });
    }

    it('blockOps: MaxPool stays float32 with Casts on both sides; outputs still close', async () => {
      const float = await loadModel('fixtures/fmnist-cnn.onnx');
      const { model: half, notes } = toFloat16(float, { blockOps: ['MaxPool'] });
      await save(half, 'cnn-block-maxpool');
      const pools = half.graph.nodes.filter((n) => n.opType === 'MaxPool');
      expect(pools.length).to.be.greaterThan(0);
      for (const p of pools) {
        expect(castsAround(p)).to.deep.equal({ before: ['Cast(to=1)'], after: ['Cast(to=10)'] });
        expect(p.inputs[0]!.elemType).to.equal('float32');
      }
      expect(notes.join('\n')).to.match(/kept 2 node\(s\) in float32 \(listed in blockOps\)/);
      const c = await compareOutputs(float, half, test, { limit: 256, threads: 1 });
      expect(c.top1Agreement).to.be.at.least(0.99);
    });
  });

  describe('weights', function () {
    /** y = x · W + B with W holding one huge, one tiny and one subnormal-range value. */
    function matmulModel(w: Float32Array): Model {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [1, 4]);
      const W = g.addInitializer('W', Tensor.from('float32', [4, 3], w));
      const B = g.addInitializer('B', Tensor.from('float32', [3], [0.5, -0.25, 1]));
      const mm = g.addNode({ opType: 'MatMul', inputs: [x, W], outputs: ['xw'] });
      const add = g.addNode({ opType: 'Add', inputs: [mm.output(), B], outputs: ['y'] });
      output(g, add.output(), [1, 3]);
      return m;
    }

    it('clamps values beyond ±65504 and names the tensor in notes and `clamped`', async () => {
      const w = seeded(12, 3);
      w[0] = 1e6;
      w[5] = -7e4;
      w[7] = 1e-6; // a float16 subnormal: kept, not flushed
      w[8] = 1e-9; // below half the smallest subnormal: becomes 0
      const { model: half, clamped, notes } = toFloat16(matmulModel(w));
      await save(half, 'clamp');
      expect(clamped).to.deep.equal([{ name: 'W', count: 2, maxAbs: 1e6 }]);
      expect(notes.some((n) => /^warning: clamped 2 value\(s\) of "W" to ±65504/.test(n))).to.equal(true);
      expect(notes.some((n) => /1 nonzero weight\(s\) in 1 tensor\(s\) .* became 0/.test(n))).to.equal(true);
      const W = half.graph.value('W').initializer!;
      expect(W.dtype).to.equal('float16');
      const bits = W.data<Uint16Array>();
      expect(bits[0]).to.equal(0x7bff); // 65504
      expect(bits[5]).to.equal(0xfbff); // -65504
      expect(float16ToFloat32(bits.subarray(7, 9))[0]).to.be.closeTo(1e-6, 3e-8); // subnormal, nearest
      expect(bits[8]).to.equal(0);
      // onnxruntime agrees: y = x · clamp(W) + B
      const x = new Float32Array([1, 0, 0, 0]);
      const y = floats((await run(half, { x: feed(half, 'x', [1, 4], x) })).y!);
      expect(y[0]).to.equal(65504); // 65504 + 0.5, rounded to float16
    });

    it('clamp: false lets them become ±inf, with a warning', () => {
      const w = seeded(12, 4);
      w[2] = 2e5;
      const { model: half, clamped, notes } = toFloat16(matmulModel(w), { clamp: false });
      expect(clamped).to.deep.equal([]);
      expect(notes.some((n) => /"W" are beyond ±65504 and became ±inf/.test(n))).to.equal(true);
      expect(half.graph.value('W').initializer!.data<Uint16Array>()[2]).to.equal(0x7c00);
    });

    it('ConstantOfShape and Cast-to-float32 in the converted region become float16; values are clamped and named', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [2, 3]);
      const d = input(g, 'd', [2, 3], 'int64');
      const shape = g.addInitializer('shape', Tensor.from('int64', [2], [2n, 3n]));
      const cos = g.addNode({ opType: 'ConstantOfShape', name: 'fill', inputs: [shape], outputs: ['big'], attributes: { value: { type: 'tensor', value: Tensor.from('float32', [1], [1e5]) } } });
      const xd = g.addNode({ opType: 'Cast', name: 'x_double', inputs: [x], outputs: ['xd'], attributes: { to: { type: 'int', value: 11 } } });
      const back = g.addNode({ opType: 'Cast', name: 'to_float', inputs: [xd.output()], outputs: ['xf'], attributes: { to: { type: 'int', value: 1 } } });
      const mn = g.addNode({ opType: 'Min', inputs: [back.output(), cos.output()], outputs: ['y'] });
      const dc = g.addNode({ opType: 'Cast', name: 'ints', inputs: [d], outputs: ['df'], attributes: { to: { type: 'int', value: 1 } } });
      output(g, mn.output(), [2, 3]);
      output(g, dc.output(), [2, 3]);
      const { model: half, clamped } = toFloat16(m);
      await save(half, 'constantofshape');
      const h = half.graph;
      expect(h.node('fill').getTensor('value')!.dtype).to.equal('float16');
      expect(clamped).to.deep.equal([{ name: 'fill.value', count: 1, maxAbs: 1e5 }]);
      expect(h.node('to_float').getInt('to')).to.equal(10);
      // a Cast from integers stays float32; the float16 output gets a Cast that takes the output's name
      expect(h.node('ints').getInt('to')).to.equal(1);
      expect(h.outputs.map((o) => [o.name, o.elemType, o.producer!.opType])).to.deep.equal([['y', 'float16', 'Min'], ['df', 'float16', 'Cast']]);
      const xs = new Float32Array([1, -2, 3e5, 0.5, -0.5, 2]);
      const ds = { dtype: 'int64' as const, dims: [2, 3], data: new BigInt64Array([1n, 2n, 3n, 4099n, 5n, 6n]) };
      const got = await run(half, { x: feed(half, 'x', [2, 3], xs), d: ds });
      expect(Array.from(floats(got.y!))).to.deep.equal([1, -2, 65504, 0.5, -0.5, 2]);
      expect(Array.from(floats(got.df!))).to.deep.equal([1, 2, 3, 4100, 5, 6]); // float16's nearest to 4099
    });

    it('a float32 initializer shared with a blocked node keeps its float32 tensor and gets a float16 copy', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [2, 3]);
      const W = g.addInitializer('W', Tensor.from('float32', [3], [0.1, 0.2, 0.3]));
      const add = g.addNode({ opType: 'Add', name: 'add', inputs: [x, W], outputs: ['a'] });
      const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [add.output()], outputs: ['r'] });
      const mul = g.addNode({ opType: 'Mul', name: 'mul', inputs: [relu.output(), W], outputs: ['y'] });
      output(g, mul.output(), [2, 3]);
      const { model: half } = toFloat16(m, { blockNodes: ['mul'], keepIoTypes: true });
      await save(half, 'shared');
      const h = half.graph;
      expect(h.value('W').initializer!.dtype).to.equal('float32');
      expect(h.node('mul').inputs[1]!.name).to.equal('W');
      expect(h.node('add').inputs[1]!.initializer!.dtype).to.equal('float16');
      expect(castsAround(h.node('mul')).before).to.deep.equal(['Cast(to=1)', undefined]);
      const xs = new Float32Array([1, -2, 3, 0.5, -0.5, 2]);
      const want = floats((await run(m, { x: feed(m, 'x', [2, 3], xs) })).y!);
      const got = floats((await run(half, { x: feed(half, 'x', [2, 3], xs) })).y!);
      expect(relErr(got, want)).to.be.below(2e-3);
    });
  });

  describe('ops kept in float32', function () {
    it('a blocked node that makes a graph output: a Cast to float16 takes the output name (float32 with keepIoTypes)', async () => {
      const m = await loadModel('fixtures/fmnist-mlp.onnx');
      const last = m.graph.outputs[0]!.producer!.name;
      const a = toFloat16(m, { blockNodes: [last] }).model;
      await save(a, 'mlp-block-last');
      expect(a.graph.outputs.map((o) => [o.name, o.elemType, o.producer!.opType])).to.deep.equal([['logits', 'float16', 'Cast']]);
      expect(a.graph.outputs[0]!.producer!.inputs[0]!.producer!.name).to.equal(last);
      const b = toFloat16(m, { blockNodes: [last], keepIoTypes: true }).model;
      await save(b, 'mlp-block-last-keepio');
      expect(b.graph.outputs.map((o) => [o.name, o.elemType, o.producer!.name])).to.deep.equal([['logits', 'float32', last]]);
      const xs = seeded(784 * 2, 11);
      const want = floats((await run(m, { input: feed(m, 'input', [2, 784], xs) })).logits!);
      for (const h of [a, b]) expect(relErr(floats((await run(h, { input: feed(h, 'input', [2, 784], xs) })).logits!), want)).to.be.below(5e-3);
    });

    it('CumSum (built-in list) stays float32 between Casts; the result matches float', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [2, 8]);
      const w = g.addInitializer('w', Tensor.from('float32', [8], seeded(8, 5)));
      const axis = g.addInitializer('axis', Tensor.from('int32', [], [1]));
      const mul = g.addNode({ opType: 'Mul', inputs: [x, w], outputs: ['m'] });
      const cs = g.addNode({ opType: 'CumSum', name: 'cumsum', inputs: [mul.output(), axis], outputs: ['c'] });
      const relu = g.addNode({ opType: 'Relu', inputs: [cs.output()], outputs: ['y'] });
      output(g, relu.output(), [2, 8]);
      const { model: half, notes } = toFloat16(m);
      await save(half, 'cumsum');
      expect(castsAround(half.graph.node('cumsum'))).to.deep.equal({ before: ['Cast(to=1)', undefined], after: ['Cast(to=10)'] });
      expect(notes.join('\n')).to.match(/kept 1 node\(s\) in float32 \(running sums overflow float16.*\): node "cumsum"/);
      const xs = seeded(16, 6, 3);
      const want = floats((await run(m, { x: feed(m, 'x', [2, 8], xs) })).y!);
      const got = floats((await run(half, { x: feed(half, 'x', [2, 8], xs) })).y!);
      expect(relErr(got, want)).to.be.below(3e-3);
    });

    it('Resize: the data goes float16, scales stay float32', async () => {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [1, 1, 3, 3]);
      const w = g.addInitializer('w', Tensor.from('float32', [1], [1.5]));
      const roi = g.addInitializer('roi', Tensor.from('float32', [0], []));
      const scales = g.addInitializer('scales', Tensor.from('float32', [4], [1, 1, 2, 2]));
      const mul = g.addNode({ opType: 'Mul', inputs: [x, w], outputs: ['m'] });
      const rs = g.addNode({ opType: 'Resize', name: 'resize', inputs: [mul.output(), roi, scales], outputs: ['y'], attributes: { mode: { type: 'string', value: 'linear' } } });
      output(g, rs.output(), [1, 1, 6, 6]);
      const { model: half } = toFloat16(m);
      await save(half, 'resize');
      const r = half.graph.node('resize');
      expect(r.inputs[0]!.producer!.opType).to.equal('Mul'); // float16 straight from the converted Mul, no Cast
      expect(r.inputs.slice(1).map((v) => v!.initializer!.dtype)).to.deep.equal(['float32', 'float32']);
      expect(half.graph.value('w').initializer!.dtype).to.equal('float16');
      const xs = seeded(9, 7);
      const want = floats((await run(m, { x: feed(m, 'x', [1, 1, 3, 3], xs) })).y!);
      const got = floats((await run(half, { x: feed(half, 'x', [1, 1, 3, 3], xs) })).y!);
      expect(relErr(got, want)).to.be.below(2e-3);
    });

    it('shape arithmetic on integers cast to float stays float32 (4099 · 0.5 floors to 2049, not 2050)', async () => {
      const m = newModel();
      const g = m.graph;
      const n = input(g, 'n', [1], 'int64');
      const x = input(g, 'x', [1]);
      const half = g.addInitializer('half', Tensor.from('float32', [], [0.5]));
      const c = g.addNode({ opType: 'Cast', name: 'to_float', inputs: [n], outputs: ['nf'], attributes: { to: { type: 'int', value: 1 } } });
      const mul = g.addNode({ opType: 'Mul', name: 'halve', inputs: [c.output(), half], outputs: ['h'] });
      const fl = g.addNode({ opType: 'Floor', name: 'floor', inputs: [mul.output()], outputs: ['f'] });
      const back = g.addNode({ opType: 'Cast', name: 'to_int', inputs: [fl.output()], outputs: ['k'], attributes: { to: { type: 'int', value: 7 } } });
      const relu = g.addNode({ opType: 'Relu', inputs: [x], outputs: ['y'] });
      back.output().type = { kind: 'tensor', elemType: 'int64', shape: [1] };
      g.outputs.push(back.output());
      output(g, relu.output(), [1]);
      const { model: conv } = toFloat16(m);
      await save(conv, 'shape-arith');
      // no Cast between the nodes of the integer chain, and its constant stays float32
      expect(conv.graph.node('to_float').getInt('to')).to.equal(1);
      expect(conv.graph.node('halve').inputs.map((v) => v!.name)).to.deep.equal(['nf', 'half']);
      expect(conv.graph.value('half').initializer!.dtype).to.equal('float32');
      expect(conv.graph.node('to_int').inputs[0]!.name).to.equal('f');
      const feeds = { n: { dtype: 'int64' as const, dims: [1], data: new BigInt64Array([4099n]) } };
      const want = await run(m, { ...feeds, x: feed(m, 'x', [1], new Float32Array([2])) });
      const got = await run(conv, { ...feeds, x: feed(conv, 'x', [1], new Float32Array([2])) });
      expect(want.k!.data[0]).to.equal(2049n);
      expect(got.k!.data[0]).to.equal(2049n);
      expect(got.y!.dtype).to.equal('float16');
    });
  });

  describe('models built with onnx.helper: subgraphs and Constants', function () {
    let files: Record<string, string> = {};
    before(function () {
      if (!hasPython('onnx')) this.skip();
      files = runPython<Record<string, string>>(PY_MODELS, tmp);
    });

    it('If: weights in both branches go float16 and each branch gives float16', async () => {
      const m = await loadModel(files.if!);
      const { model: half } = toFloat16(m);
      await save(half, 'if');
      const ifNode = half.graph.nodes.find((n) => n.opType === 'If')!;
      for (const s of ifNode.subgraphs()) {
        for (const v of s.initializers.values()) expect(v.initializer!.dtype, v.name).to.equal('float16');
        for (const n of s.nodes.filter((k) => k.opType === 'Constant')) expect(n.getTensor('value')!.dtype).to.equal('float16');
        expect(s.outputs.map((o) => o.elemType)).to.deep.equal(['float16']);
      }
      const xs = seeded(6, 8, 2);
      for (const cond of [0, 1]) {
        const c = { dtype: 'bool' as const, dims: [], data: new Uint8Array([cond]) };
        const want = floats((await run(m, { cond: c, x: feed(m, 'x', [2, 3], xs) })).y!);
        const got = floats((await run(half, { cond: c, x: feed(half, 'x', [2, 3], xs) })).y!);
        expect(relErr(got, want), `cond ${cond}`).to.be.below(3e-3);
      }
    });

    it('Loop: the carried value, body weights and scan output go float16 and match float', async () => {
      const m = await loadModel(files.loop!);
      const { model: half } = toFloat16(m, { keepIoTypes: true });
      await save(half, 'loop');
      const body = half.graph.nodes.find((n) => n.opType === 'Loop')!.subgraphs()[0]!;
      expect(body.inputs.map((v) => v.elemType)).to.deep.equal(['int64', 'bool', 'float16']);
      expect(body.outputs.map((v) => v.elemType)).to.deep.equal(['bool', 'float16', 'float16']);
      const xs = seeded(4, 9);
      const want = await run(m, { x: feed(m, 'x', [4], xs) });
      const got = await run(half, { x: feed(half, 'x', [4], xs) });
      for (const k of Object.keys(want)) {
        expect(got[k]!.dtype).to.equal('float32');
        expect(relErr(floats(got[k]!), floats(want[k]!)), k).to.be.below(3e-3);
      }
    });
  });

  describe('PyTorch-exported conformance models', function () {
    const cases = conformanceCases().filter((c) => /^pytorch-(converted|operator)\//.test(c.id) && c.dataSets.length);

    it('every one onnxruntime runs in float also runs in float16 and matches PyTorch within float16 tolerance', async function () {
      if (!cases.length) this.skip();
      const checked: string[] = [];
      const failures: string[] = [];
      for (const c of cases) {
        const float = await loadModel(c.model);
        let runner: Runner;
        try {
          runner = await Runner.create(float, { threads: 1 });
        } catch {
          continue; // opset-1/6 ops that onnxruntime itself no longer runs
        }
        await runner.release();
        const { model: half, modified } = toFloat16(float);
        if (!modified) continue;
        const ds = c.dataSets[0]!;
        const names = readdirSync(ds).sort();
        const ins = await Promise.all(names.filter((f) => f.startsWith('input')).map((f) => loadNamedTensor(join(ds, f))));
        const outs = await Promise.all(names.filter((f) => f.startsWith('output')).map((f) => loadNamedTensor(join(ds, f))));
        const inputs = half.graph.inputs.filter((v) => !v.initializer);
        const feeds: Record<string, RunTensor> = {};
        inputs.forEach((v, i) => {
          const t = ins[i]!.tensor;
          feeds[v.name] = t.dtype === 'float32' ? feed(half, v.name, [...t.dims], t.data<Float32Array>()) : { dtype: t.dtype, dims: t.dims, data: t.data() };
        });
        const got = await run(half, feeds);
        half.graph.outputs.forEach((v, i) => {
          const err = relErr(floats(got[v.name]!), outs[i]!.tensor.data<Float32Array>());
          if (!(err < 3e-3)) failures.push(`${c.id} output ${v.name}: relative error ${err}`);
        });
        checked.push(c.id);
        if (checked.length % 8 === 0) await save(half, c.id.replace(/\W+/g, '_'));
      }
      expect(failures).to.deep.equal([]);
      expect(checked.length).to.be.at.least(40);
    });
  });

  describe('ONNX node conformance models', function () {
    const cases = conformanceCases().filter((c) => c.id.startsWith('node/') && c.dataSets.length);

    it('every one onnxruntime runs in float still loads and runs after conversion (LayerNormalization keeps float32 Mean)', async function () {
      if (!cases.length) this.skip();
      this.timeout(300_000);
      const failures: string[] = [];
      let converted = 0;
      let sawLayerNorm = false;
      for (const c of cases) {
        let float: Model;
        let ins: Tensor[];
        try {
          float = await loadModel(c.model);
          ins = (await Promise.all(readdirSync(c.dataSets[0]!).filter((f) => f.startsWith('input')).sort().map((f) => loadNamedTensor(join(c.dataSets[0]!, f))))).map((t) => t.tensor);
          await (await Runner.create(float, { threads: 1 })).release();
        } catch {
          continue; // onnxruntime does not run the float model (old opsets, training ops), or inputs that are not tensors
        }
        if ((float.opset() ?? 1) < 6) continue;
        const { model: half, modified } = toFloat16(float);
        if (!modified) continue;
        converted++;
        if (c.id === 'node/test_layer_normalization_2d_axis0') {
          sawLayerNorm = true;
          const ln = half.graph.nodes.find((n) => n.opType === 'LayerNormalization')!;
          // Mean and InvStdDev are float32 by schema: each gets a Cast to float16 on its way to the graph output
          expect(castsAround(ln).after).to.deep.equal(['Cast(to=10)', 'Cast(to=10)']);
          await save(half, 'layernorm');
        }
        try {
          const feeds: Record<string, RunTensor | Tensor> = {};
          half.graph.inputs.filter((v) => !v.initializer).forEach((v, i) => {
            const t = ins[i]!;
            feeds[v.name] = t.dtype === 'float32' ? feed(half, v.name, [...t.dims], t.data<Float32Array>()) : t;
          });
          await run(half, feeds);
        } catch (e) {
          failures.push(`${c.id}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      expect(failures).to.deep.equal([]);
      expect(converted).to.be.at.least(500);
      expect(sawLayerNorm).to.equal(true);
    });
  });

  describe('contract', function () {
    it('is deterministic and a second run changes nothing', async () => {
      for (const f of ['fmnist-cnn', 'fmnist-mobilenet']) {
        for (const keepIoTypes of [false, true]) {
          const a = toFloat16(await loadModel(`fixtures/${f}.onnx`), { keepIoTypes });
          const b = toFloat16(await loadModel(`fixtures/${f}.onnx`), { keepIoTypes });
          expect(Buffer.from(encodeModel(a.model)).equals(Buffer.from(encodeModel(b.model))), f).to.equal(true);
          const again = toFloat16(a.model, { keepIoTypes });
          expect(again.modified, `${f} keepIoTypes ${keepIoTypes}`).to.equal(false);
          expect(again.model).to.equal(a.model);
        }
      }
      const blocked = toFloat16(await loadModel('fixtures/fmnist-cnn.onnx'), { blockOps: ['MaxPool', 'Relu'] });
      expect(toFloat16(blocked.model, { blockOps: ['MaxPool', 'Relu'] }).modified).to.equal(false);
    });

    it('leaves the given model untouched and runs as a pass', async () => {
      const m = await loadModel('fixtures/fmnist-mlp.onnx');
      const before = Buffer.from(encodeModel(m));
      const r = await runPass(fp16Pass, m, { keepIoTypes: true });
      expect(r.modified).to.equal(true);
      expect(r.model).to.not.equal(m);
      expect(Buffer.from(encodeModel(m)).equals(before)).to.equal(true);
      expect(fp16Pass.name).to.equal('convert.fp16');
      expect(fp16Options.parse({})).to.deep.equal({ keepIoTypes: false, blockOps: [], blockNodes: [], clamp: true });
    });

    it('bad options: errors name the option', async () => {
      const m = await loadModel('fixtures/fmnist-mlp.onnx');
      expect(() => toFloat16(m, { blockNodes: ['nope'] })).to.throw(OptionsError, /blockNodes: no node named "nope" in the model \(one of: "\/net\/net.0\/Gemm"/);
      expect(() => toFloat16(m, { clamp: 'yes' as unknown as boolean })).to.throw(OptionsError, /Invalid options for convert.fp16: clamp:/);
    });

    it('every converted model passes the ONNX checker (full_check)', function () {
      if (!hasPython('onnx') || !saved.length) this.skip();
      const result = runPython<string[]>(
        'import json, sys, onnx\nout = []\nfor f in json.load(sys.stdin):\n    try:\n        onnx.checker.check_model(onnx.load(f), full_check=True); out.append("ok")\n    except Exception as e:\n        out.append(f"{f}: {e}")\nprint(json.dumps(out))',
        saved,
      );
      expect(result).to.deep.equal(saved.map(() => 'ok'));
      expect(saved.length).to.be.at.least(12);
    });
  });
});

/** Builds the If and Loop models with onnx.helper (opset 13, IR 7) in the folder given on stdin. */
const PY_MODELS = `
import json, sys, os
import numpy as np
from onnx import helper, numpy_helper, TensorProto, save
d = json.load(sys.stdin)
rng = np.random.default_rng(0)
F = TensorProto.FLOAT
def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)
out = {}

# If: then y = x * Wt + Constant(0.25); else y = Relu(x + We)  (branch weights inside the branches)
then_g = helper.make_graph(
    [helper.make_node('Constant', [], ['c'], value=numpy_helper.from_array(np.array([0.25], np.float32))),
     helper.make_node('Mul', ['x', 'Wt'], ['t0']), helper.make_node('Add', ['t0', 'c'], ['ty'])],
    'then', [], [helper.make_tensor_value_info('ty', F, [2, 3])], [init('Wt', rng.standard_normal((2, 3)))])
else_g = helper.make_graph(
    [helper.make_node('Add', ['x', 'We'], ['e0']), helper.make_node('Relu', ['e0'], ['ey'])],
    'else', [], [helper.make_tensor_value_info('ey', F, [2, 3])], [init('We', rng.standard_normal((3,)))])
g = helper.make_graph(
    [helper.make_node('If', ['cond'], ['y'], then_branch=then_g, else_branch=else_g)], 'if_model',
    [helper.make_tensor_value_info('cond', TensorProto.BOOL, []), helper.make_tensor_value_info('x', F, [2, 3])],
    [helper.make_tensor_value_info('y', F, [2, 3])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], ir_version=7)
out['if'] = os.path.join(d, 'if.onnx'); save(m, out['if'])

# Loop: 3 trips of s = tanh(s * Wb + b); scan output collects s
body = helper.make_graph(
    [helper.make_node('Identity', ['cond_in'], ['cond_out']),
     helper.make_node('Mul', ['s_in', 'Wb'], ['s0']), helper.make_node('Add', ['s0', 'b'], ['s1']),
     helper.make_node('Tanh', ['s1'], ['s_out']), helper.make_node('Identity', ['s_out'], ['scan'])],
    'body',
    [helper.make_tensor_value_info('i', TensorProto.INT64, []), helper.make_tensor_value_info('cond_in', TensorProto.BOOL, []),
     helper.make_tensor_value_info('s_in', F, [4])],
    [helper.make_tensor_value_info('cond_out', TensorProto.BOOL, []), helper.make_tensor_value_info('s_out', F, [4]),
     helper.make_tensor_value_info('scan', F, [4])],
    [init('Wb', rng.standard_normal((4,)))])
g = helper.make_graph(
    [helper.make_node('Loop', ['trips', 'cond0', 'x'], ['final', 'all'], body=body)], 'loop_model',
    [helper.make_tensor_value_info('x', F, [4])],
    [helper.make_tensor_value_info('final', F, [4]), helper.make_tensor_value_info('all', F, [3, 4])],
    [numpy_helper.from_array(np.array(3, np.int64), 'trips'), numpy_helper.from_array(np.array(True), 'cond0'), init('b', [0.1, -0.2, 0.3, 0.0])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], ir_version=7)
out['loop'] = os.path.join(d, 'loop.onnx'); save(m, out['loop'])
print(json.dumps(out))
`;
