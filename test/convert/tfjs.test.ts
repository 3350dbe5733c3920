/**
 * ONNX ⇄ TensorFlow.js. Every numeric check compares two independent runtimes, never our code with itself:
 *
 * - per op (single-node ONNX models built with the IR, several attribute combinations each): onnxruntime on the
 *   original vs TensorFlow.js (CPU backend, `tf.loadGraphModel`) on the converted model, within 1e-4; then the
 *   tfjs model converted back to ONNX vs the original, both in onnxruntime;
 * - whole models: the four Fashion-MNIST fixtures and PyTorch-exported conformance models (against PyTorch's
 *   stored outputs as well);
 * - a layers model made with tfjs's own layers API, saved by tfjs, read by `loadTfjs`, run in onnxruntime;
 * - `saveTfjs` output read from disk by `tf.loadGraphModel` through a file IOHandler;
 * - the ONNX checker (python3-onnx) on the converted-back models; unsupported ops (one error naming all);
 *   hostile and broken model.json files.
 *
 * Set ONNXPRESS_REPORT=1 to print the largest difference measured per op.
 */
import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GraphError, LoadError, Model, Tensor, attr, loadModel, saveModel, type Attr, type Dim, type Value } from '../../src/index.js';
import { loadTfjs, onnxToTfjs, saveTfjs, tfjsToOnnx, type TfjsModelJson } from '../../src/convert/tfjs/index.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { loadTensor } from '../../src/onnx/tensorfile.js';
import { mulberry32 } from '../../src/util/random.js';
import { hasPython, runPython } from '../helpers/python.js';

const tmp = mkdtempSync(join(tmpdir(), 'onnxpress-tfjs-'));
const TOL = 1e-4;
const measured = new Map<string, number>();
const checkerFiles: string[] = [];

function note(key: string, diff: number): void {
  measured.set(key, Math.max(measured.get(key) ?? 0, diff));
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// model builders

interface Spec {
  op: string;
  attrs?: Record<string, Attr>;
  /** Dynamic inputs (graph inputs): name → shape. */
  inputs: Record<string, number[]>;
  /** Constant inputs: dims and data (float32) or int64 values; null marks an omitted optional input. */
  consts?: (null | { dims: number[]; data?: number[] | Float32Array; int64?: number[] } | string)[];
  opset?: number;
  outputs?: number;
}

/** One node: its inputs are the dynamic inputs in order, then the constants (a string names a dynamic input). */
function single(s: Spec, seed = 1): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', s.opset ?? 13);
  const g = m.graph;
  g.name = s.op;
  const ins: (Value | null)[] = [];
  for (const [name, shape] of Object.entries(s.inputs)) {
    const v = g.declareValue(name);
    v.type = { kind: 'tensor', elemType: 'float32', shape };
    g.inputs.push(v);
    ins.push(v);
  }
  let k = 0;
  for (const c of s.consts ?? []) {
    if (c === null) ins.push(null);
    else if (typeof c === 'string') ins.push(g.value(c));
    else if (c.int64) ins.push(g.addInitializer(`c${k++}`, Tensor.from('int64', c.dims, c.int64.map(BigInt))));
    else ins.push(g.addInitializer(`c${k++}`, Tensor.from('float32', c.dims, c.data instanceof Float32Array ? c.data : Float32Array.from(c.data ?? randn(c.dims.reduce((a, b) => a * b, 1), seed + k)))));
  }
  const n = g.addNode({ opType: s.op, name: `${s.op.toLowerCase()}_node`, inputs: ins, attributes: s.attrs ?? {}, outputs: ['y'] });
  n.output().type = { kind: 'tensor', elemType: 'float32' };
  g.outputs.push(n.output());
  return m;
}

/** Feeds for a model's graph inputs, seeded. */
function feedsFor(m: Model, seed: number, batch = 2): Record<string, RunTensor> {
  const out: Record<string, RunTensor> = {};
  let i = 0;
  for (const v of m.graph.inputs) {
    if (v.initializer) continue;
    const dims = (v.shape ?? []).map((d: Dim) => (typeof d === 'number' ? d : batch));
    out[v.name] = { dtype: 'float32', dims, data: randn(dims.reduce((a, b) => a * b, 1), seed + 31 * i++) };
  }
  return out;
}

async function ort(model: Model, feeds: Record<string, RunTensor>): Promise<Record<string, RunTensor>> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    return await r.run(feeds);
  } finally {
    await r.release();
  }
}

/** Runs converted files in TensorFlow.js; returns outputs by ONNX output name. */
async function runTfjs(files: { path: string; data: Uint8Array }[], feeds: Record<string, RunTensor>): Promise<Record<string, { dims: number[]; data: Float32Array }>> {
  const json = JSON.parse(new TextDecoder().decode(files.find((f) => f.path === 'model.json')!.data)) as TfjsModelJson;
  const gm = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology as object, weightSpecs: json.weightsManifest[0]!.weights as tf.io.WeightsManifestEntry[], weightData: concat(json, files), signature: json.signature as object }));
  const inputs: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = tf.tensor(v.data as Float32Array, [...v.dims]);
  const names = Object.keys(json.signature!.outputs!);
  const res = gm.execute(inputs);
  const list = Array.isArray(res) ? res : [res];
  const out: Record<string, { dims: number[]; data: Float32Array }> = {};
  names.forEach((n, i) => (out[n] = { dims: list[i]!.shape, data: list[i]!.dataSync() as Float32Array }));
  tf.dispose([...Object.values(inputs), ...list]);
  gm.dispose();
  return out;
}

function concat(json: TfjsModelJson, files: { path: string; data: Uint8Array }[]): ArrayBuffer {
  const parts = json.weightsManifest.flatMap((g) => g.paths.map((p) => files.find((f) => f.path === p)!.data));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  return all.buffer;
}

/**
 * The core check: onnxruntime on `model` vs tfjs on its conversion, and onnxruntime on the conversion converted
 * back. Returns the two largest differences.
 */
async function equivalent(key: string, model: Model, seed = 7, save = false): Promise<{ tfjs: number; back: number }> {
  const feeds = feedsFor(model, seed);
  const want = await ort(model, feeds);
  const { files } = await onnxToTfjs(model);
  const got = await runTfjs(files, feeds);
  let dTf = 0;
  for (const name of Object.keys(want)) {
    expect(got[name], `output ${name}`).to.exist;
    expect(got[name]!.dims).to.deep.equal([...want[name]!.dims]);
    dTf = Math.max(dTf, maxDiff(got[name]!.data, want[name]!.data as Float32Array));
  }
  const json = JSON.parse(new TextDecoder().decode(files[0]!.data)) as TfjsModelJson;
  const back = tfjsToOnnx(json, new Uint8Array(concat(json, files)));
  const again = await ort(back, feeds);
  let dBack = 0;
  for (const name of Object.keys(want)) dBack = Math.max(dBack, maxDiff(again[name]!.data as Float32Array, want[name]!.data as Float32Array));
  note(`${key} (tfjs)`, dTf);
  note(`${key} (back to ONNX)`, dBack);
  if (save) {
    const f = join(tmp, `${key.replace(/[^A-Za-z0-9]+/g, '_')}.onnx`);
    await saveModel(back, f);
    checkerFiles.push(f);
  }
  expect(dTf, `${key}: tfjs vs onnxruntime`).to.be.below(TOL);
  expect(dBack, `${key}: back to ONNX vs original`).to.be.below(TOL);
  return { tfjs: dTf, back: dBack };
}

// ---------------------------------------------------------------------------------------------------------------
// the op table

const X = { x: [2, 4, 7, 6] };
const i = (v: number) => attr.int(v);
const is = (v: number[]) => attr.ints(v);
const f = (v: number) => attr.float(v);
const s = (v: string) => attr.string(v);
const w = (...dims: number[]) => ({ dims });

const CASES: Record<string, Spec[]> = {
  Conv: [
    { op: 'Conv', inputs: X, consts: [w(5, 4, 3, 3), w(5)], attrs: { pads: is([1, 1, 1, 1]) } },
    { op: 'Conv', inputs: X, consts: [w(5, 4, 3, 3), w(5)], attrs: { strides: is([2, 2]), pads: is([0, 1, 2, 1]) } },
    { op: 'Conv', inputs: X, consts: [w(3, 4, 3, 2)], attrs: { dilations: is([2, 2]), pads: is([2, 1, 1, 0]) } },
    { op: 'Conv', inputs: X, consts: [w(6, 2, 3, 3), w(6)], attrs: { group: i(2), pads: is([1, 1, 1, 1]) } },
    { op: 'Conv', inputs: X, consts: [w(4, 1, 3, 3), w(4)], attrs: { group: i(4), strides: is([2, 1]), pads: is([1, 0, 1, 2]) } },
    { op: 'Conv', inputs: X, consts: [w(8, 1, 3, 3), w(8)], attrs: { group: i(4), pads: is([1, 1, 1, 1]) } },
    { op: 'Conv', inputs: X, consts: [w(5, 4, 3, 3), w(5)], attrs: { auto_pad: s('SAME_UPPER'), strides: is([2, 2]) } },
    { op: 'Conv', inputs: X, consts: [w(5, 4, 1, 1)] },
  ],
  ConvTranspose: [
    { op: 'ConvTranspose', inputs: X, consts: [w(4, 3, 3, 3), w(3)], attrs: { strides: is([2, 2]), pads: is([1, 1, 1, 1]), output_padding: is([1, 1]) } },
    { op: 'ConvTranspose', inputs: X, consts: [w(4, 2, 2, 3)] },
    { op: 'ConvTranspose', inputs: X, consts: [w(4, 3, 4, 4), w(3)], attrs: { strides: is([2, 2]), pads: is([1, 0, 2, 1]) } },
  ],
  Gemm: [
    { op: 'Gemm', inputs: { x: [3, 8] }, consts: [w(5, 8), w(5)], attrs: { transB: i(1) } },
    { op: 'Gemm', inputs: { x: [8, 3] }, consts: [w(8, 5), w(3, 5)], attrs: { transA: i(1), alpha: f(0.5), beta: f(2) } },
    { op: 'Gemm', inputs: { x: [3, 8], b: [8, 4] }, consts: [w(4)], attrs: { alpha: f(1.5) } },
  ],
  MatMul: [
    { op: 'MatMul', inputs: { x: [3, 8] }, consts: [w(8, 5)] },
    { op: 'MatMul', inputs: { x: [2, 3, 8] }, consts: [w(8, 5)] },
    { op: 'MatMul', inputs: { x: [2, 3, 8], y: [2, 8, 4] } },
  ],
  BatchNormalization: [
    { op: 'BatchNormalization', inputs: X, consts: [w(4), w(4), w(4), { dims: [4], data: [0.5, 1, 2, 0.1] }], attrs: { epsilon: f(1e-3) } },
    { op: 'BatchNormalization', inputs: { x: [3, 4] }, consts: [w(4), w(4), w(4), { dims: [4], data: [0.5, 1, 2, 0.1] }] },
    { op: 'BatchNormalization', inputs: { x: [2, 4, 5] }, consts: [w(4), w(4), w(4), { dims: [4], data: [0.5, 1, 2, 0.1] }] },
  ],
  Relu: [{ op: 'Relu', inputs: X }],
  Clip: [
    { op: 'Clip', inputs: X, consts: [{ dims: [], data: [0] }, { dims: [], data: [6] }] },
    { op: 'Clip', inputs: X, consts: [{ dims: [], data: [-0.5] }, { dims: [], data: [0.25] }] },
    { op: 'Clip', inputs: X, consts: [null, { dims: [], data: [0.3] }] },
    { op: 'Clip', inputs: X, attrs: { min: f(-0.2), max: f(0.4) }, opset: 6 },
  ],
  LeakyRelu: [{ op: 'LeakyRelu', inputs: X }, { op: 'LeakyRelu', inputs: X, attrs: { alpha: f(0.2) } }],
  Sigmoid: [{ op: 'Sigmoid', inputs: X }],
  Tanh: [{ op: 'Tanh', inputs: X }],
  Elu: [{ op: 'Elu', inputs: X }, { op: 'Elu', inputs: X, attrs: { alpha: f(0.5) } }],
  HardSigmoid: [{ op: 'HardSigmoid', inputs: X }, { op: 'HardSigmoid', inputs: X, attrs: { alpha: f(0.5), beta: f(0.4) } }],
  HardSwish: [{ op: 'HardSwish', inputs: { x: [2, 4, 3, 3] }, opset: 14 }],
  Add: [
    { op: 'Add', inputs: X, consts: [w(4, 1, 1)] },
    { op: 'Add', inputs: { x: [2, 4, 7, 6], y: [2, 4, 7, 6] } },
    { op: 'Add', inputs: { x: [3, 5] }, consts: [w(5)] },
  ],
  Sub: [{ op: 'Sub', inputs: X, consts: [w(1, 4, 1, 1)] }, { op: 'Sub', inputs: { x: [2, 4, 7, 6], y: [1, 4, 1, 6] } }],
  Mul: [{ op: 'Mul', inputs: X, consts: [w(6)] }, { op: 'Mul', inputs: { x: [2, 3], y: [2, 3] } }],
  Div: [{ op: 'Div', inputs: X, consts: [{ dims: [], data: [4] }] }, { op: 'Div', inputs: { x: [2, 3], y: [1, 3] } }],
  Concat: [
    { op: 'Concat', inputs: { x: [2, 4, 7, 6], y: [2, 3, 7, 6] }, attrs: { axis: i(1) } },
    { op: 'Concat', inputs: { x: [2, 4, 7, 6] }, consts: [w(2, 4, 7, 2)], attrs: { axis: i(-1) } },
  ],
  MaxPool: [
    { op: 'MaxPool', inputs: X, attrs: { kernel_shape: is([2, 2]), strides: is([2, 2]) } },
    { op: 'MaxPool', inputs: X, attrs: { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([1, 1, 1, 1]) } },
    { op: 'MaxPool', inputs: X, attrs: { kernel_shape: is([3, 2]), strides: is([2, 2]), ceil_mode: i(1) } },
    { op: 'MaxPool', inputs: X, attrs: { kernel_shape: is([2, 3]), pads: is([0, 1, 1, 2]) } },
  ],
  AveragePool: [
    { op: 'AveragePool', inputs: X, attrs: { kernel_shape: is([2, 2]), strides: is([2, 2]) } },
    { op: 'AveragePool', inputs: X, attrs: { kernel_shape: is([3, 3]), pads: is([1, 1, 1, 1]) } },
    { op: 'AveragePool', inputs: X, attrs: { kernel_shape: is([3, 3]), strides: is([2, 2]), pads: is([1, 0, 1, 2]), count_include_pad: i(1) } },
    { op: 'AveragePool', inputs: X, attrs: { kernel_shape: is([3, 2]), strides: is([2, 2]), ceil_mode: i(1) } },
  ],
  GlobalAveragePool: [{ op: 'GlobalAveragePool', inputs: X }],
  GlobalMaxPool: [{ op: 'GlobalMaxPool', inputs: X }],
  Flatten: [{ op: 'Flatten', inputs: X }, { op: 'Flatten', inputs: X, attrs: { axis: i(2) } }],
  Reshape: [{ op: 'Reshape', inputs: X, consts: [{ dims: [3], int64: [0, -1, 6] }] }, { op: 'Reshape', inputs: X, consts: [{ dims: [2], int64: [4, 84] }] }],
  Transpose: [{ op: 'Transpose', inputs: X, attrs: { perm: is([0, 2, 3, 1]) } }, { op: 'Transpose', inputs: X, attrs: { perm: is([1, 0, 3, 2]) } }, { op: 'Transpose', inputs: { x: [3, 5] } }],
  Softmax: [
    { op: 'Softmax', inputs: { x: [3, 10] } },
    { op: 'Softmax', inputs: X, attrs: { axis: i(1) } },
    { op: 'Softmax', inputs: X, attrs: { axis: i(1) }, opset: 11 },
    { op: 'Softmax', inputs: X, attrs: { axis: i(2) } },
  ],
  Dropout: [{ op: 'Dropout', inputs: X }],
  Identity: [{ op: 'Identity', inputs: X }],
  Pad: [
    { op: 'Pad', inputs: X, consts: [{ dims: [8], int64: [0, 0, 1, 2, 0, 0, 2, 1] }] },
    { op: 'Pad', inputs: X, consts: [{ dims: [8], int64: [0, 1, 1, 0, 0, 0, 1, 1] }, { dims: [], data: [0.5] }] },
    { op: 'Pad', inputs: X, consts: [{ dims: [8], int64: [0, 0, 2, 1, 0, 0, 1, 2] }], attrs: { mode: s('reflect') } },
  ],
  Resize: [
    { op: 'Resize', inputs: X, consts: [null, { dims: [4], data: [1, 1, 2, 2] }], attrs: { mode: s('nearest'), coordinate_transformation_mode: s('asymmetric'), nearest_mode: s('floor') } },
    { op: 'Resize', inputs: X, consts: [null, { dims: [4], data: [1, 1, 2, 2] }], attrs: { mode: s('linear') } },
    { op: 'Resize', inputs: X, consts: [null, null, { dims: [4], int64: [2, 4, 10, 9] }], attrs: { mode: s('linear'), coordinate_transformation_mode: s('align_corners') } },
    { op: 'Resize', inputs: X, consts: [null, { dims: [4], data: [1, 1, 3, 2] }], attrs: { mode: s('linear'), coordinate_transformation_mode: s('asymmetric') } },
    { op: 'Resize', inputs: X, consts: [null, { dims: [4], data: [1, 1, 2, 2] }], attrs: { mode: s('nearest') } },
  ],
};

/** Multi-node graphs that exercise layouts: NHWC chains, constants broadcast in NHWC, Constant nodes. */
function chains(): Record<string, Model> {
  const out: Record<string, Model> = {};
  {
    // Conv → Add([C,1,1]) → Relu → Conv, plus Conv + second branch (mixed layouts) → Concat → GlobalAveragePool
    const m = single({ op: 'Conv', inputs: X, consts: [w(6, 4, 3, 3), w(6)], attrs: { pads: is([1, 1, 1, 1]) } });
    const g = m.graph;
    const y = g.value('y');
    g.outputs.length = 0;
    const k = g.addInitializer('k', Tensor.from('float32', [6, 1, 1], randn(6, 3)));
    const a = g.addNode({ opType: 'Add', inputs: [y, k] }).output();
    const r = g.addNode({ opType: 'Relu', inputs: [a] }).output();
    const w2 = g.addInitializer('w2', Tensor.from('float32', [6, 6, 1, 1], randn(36, 4)));
    const c2 = g.addNode({ opType: 'Conv', inputs: [r, w2] }).output();
    const sum = g.addNode({ opType: 'Add', inputs: [c2, r] }).output();
    const cat = g.addNode({ opType: 'Concat', inputs: [sum, g.value('x')], attributes: { axis: i(1) } }).output();
    const gap = g.addNode({ opType: 'GlobalAveragePool', inputs: [cat] }).output();
    const cst = g.addNode({ opType: 'Constant', attributes: { value: attr.tensor(Tensor.from('float32', [1, 10, 1, 1], randn(10, 5))) } }).output();
    const o = g.addNode({ opType: 'Mul', inputs: [gap, cst], outputs: ['out'] }).output();
    o.type = { kind: 'tensor', elemType: 'float32' };
    g.outputs.push(o, r);
    out['Conv→Add→Relu→Conv⊕Concat→GAP·Constant (two outputs)'] = m;
  }
  {
    // dynamic batch: symbolic first dim through Conv → Flatten → Gemm
    const m = single({ op: 'Conv', inputs: { x: [2, 3, 6, 6] }, consts: [w(4, 3, 3, 3)] });
    const g = m.graph;
    g.inputs[0]!.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 3, 6, 6] };
    g.outputs.length = 0;
    const fl = g.addNode({ opType: 'Flatten', inputs: [g.value('y')] }).output();
    const gw = g.addInitializer('gw', Tensor.from('float32', [5, 64], randn(320, 6)));
    const o = g.addNode({ opType: 'Gemm', inputs: [fl, gw], attributes: { transB: i(1) }, outputs: ['logits'] }).output();
    o.type = { kind: 'tensor', elemType: 'float32' };
    g.outputs.push(o);
    out['dynamic batch Conv→Flatten→Gemm'] = m;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

describe('convert: ONNX ⇄ TensorFlow.js', function () {
  this.timeout(120_000);

  before(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  after(() => {
    if (process.env.ONNXPRESS_REPORT) {
      for (const [k, v] of [...measured].sort()) console.log(`    ${k.padEnd(72)} ${v.toExponential(2)}`);
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('each op: onnxruntime vs tfjs, and back to ONNX', () => {
    for (const [op, specs] of Object.entries(CASES)) {
      it(`${op} (${specs.length} attribute combination${specs.length > 1 ? 's' : ''})`, async () => {
        for (const [k, spec] of specs.entries()) await equivalent(op, single(spec, 11 + k), 100 + k, k === 0);
      });
    }
    for (const [name, m] of Object.entries(chains())) {
      it(name, async () => {
        await equivalent(name, m, 5, true);
      });
    }
  });

  describe('whole models', () => {
    for (const name of ['cnn', 'mlp', 'resnet8', 'mobilenet']) {
      it(`fixtures/fmnist-${name}.onnx`, async () => {
        const m = await loadModel(`fixtures/fmnist-${name}.onnx`);
        await equivalent(`fmnist-${name}`, m, 3, true);
      });
    }

    const CONFORMANCE = '/usr/share/libonnx-testdata/data';
    const pytorch = ['pytorch-converted/test_Conv2d_groups', 'pytorch-converted/test_Conv2d_depthwise_with_multiplier', 'pytorch-converted/test_ConvTranspose2d', 'pytorch-converted/test_BatchNorm2d_eval', 'pytorch-converted/test_AvgPool2d_stride', 'pytorch-converted/test_MaxPool2d', 'pytorch-converted/test_ReflectionPad2d', 'pytorch-converted/test_PixelShuffle', 'pytorch-converted/test_Linear', 'pytorch-converted/test_ELU', 'pytorch-operator/test_operator_view', 'pytorch-operator/test_operator_permute2'];
    for (const id of pytorch) {
      it(`PyTorch export ${id} (vs PyTorch's stored output and onnxruntime)`, async function () {
        if (!existsSync(join(CONFORMANCE, id))) this.skip();
        const m = await loadModel(join(CONFORMANCE, id, 'model.onnx'));
        const x = await loadTensor(join(CONFORMANCE, id, 'test_data_set_0', 'input_0.pb'));
        const y = await loadTensor(join(CONFORMANCE, id, 'test_data_set_0', 'output_0.pb'));
        const input = m.graph.inputs.find((v) => !v.initializer)!.name;
        const { files } = await onnxToTfjs(m);
        const got = await runTfjs(files, { [input]: { dtype: 'float32', dims: x.dims, data: x.data<Float32Array>() } });
        const out = Object.values(got)[0]!;
        expect(out.dims).to.deep.equal([...y.dims]);
        const d = maxDiff(out.data, y.data<Float32Array>());
        note(`${id} (tfjs vs PyTorch)`, d);
        expect(d).to.be.below(TOL);
        // these exports use opsets onnxruntime 1.30 no longer implements: check the converted-back model instead
        const json = JSON.parse(new TextDecoder().decode(files[0]!.data)) as TfjsModelJson;
        const back = tfjsToOnnx(json, new Uint8Array(concat(json, files)));
        const again = await ort(back, { [input]: { dtype: 'float32', dims: x.dims, data: x.data<Float32Array>() } });
        const d2 = maxDiff(Object.values(again)[0]!.data as Float32Array, y.data<Float32Array>());
        note(`${id} (back to ONNX, onnxruntime vs PyTorch)`, d2);
        expect(d2).to.be.below(TOL);
      });
    }
  });

  describe('files', () => {
    it('saveTfjs writes model.json and 4 MB shards that tf.loadGraphModel reads from disk; loadTfjs reads them back', async () => {
      const m = await loadModel('fixtures/fmnist-cnn.onnx');
      const dir = join(tmp, 'cnn-tfjs');
      const saved = await saveTfjs(m, dir, { shardBytes: 64 * 1024 });
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as TfjsModelJson;
      expect(json.format).to.equal('graph-model');
      expect(json.weightsManifest[0]!.paths.length).to.be.greaterThan(1);
      expect(json.weightsManifest[0]!.paths[0]).to.match(/^group1-shard1of\d+\.bin$/);
      expect(saved.files.map((f) => f.path)).to.deep.equal(['model.json', ...json.weightsManifest[0]!.paths]);
      // an IOHandler that reads the folder as a browser would fetch it
      const handler: tf.io.IOHandler = {
        load: async () => {
          const bins = json.weightsManifest[0]!.paths.map((p) => readFileSync(join(dir, p)));
          const all = Buffer.concat(bins);
          return { modelTopology: json.modelTopology as object, weightSpecs: json.weightsManifest[0]!.weights as tf.io.WeightsManifestEntry[], weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength), format: json.format, signature: json.signature as object };
        },
      };
      const gm = await tf.loadGraphModel(handler);
      const feeds = feedsFor(m, 4, 3);
      const want = await ort(m, feeds);
      const got = gm.execute({ input: tf.tensor(feeds.input!.data as Float32Array, [...feeds.input!.dims]) }) as tf.Tensor;
      expect(maxDiff(got.dataSync(), want.logits!.data as Float32Array)).to.be.below(TOL);
      const back = await loadTfjs(dir);
      expect(maxDiff((await ort(back, feeds)).logits!.data as Float32Array, want.logits!.data as Float32Array)).to.be.below(TOL);
      const again = await loadTfjs(join(dir, 'model.json'));
      expect(again.graph.nodes.length).to.equal(back.graph.nodes.length);
    });

    it('is deterministic: the same model gives byte-identical files', async () => {
      const m = await loadModel('fixtures/fmnist-resnet8.onnx');
      const a = await onnxToTfjs(m);
      const b = await onnxToTfjs(m);
      expect(a.files.map((f) => f.path)).to.deep.equal(b.files.map((f) => f.path));
      a.files.forEach((f, k) => expect(Buffer.compare(Buffer.from(f.data), Buffer.from(b.files[k]!.data))).to.equal(0));
    });

    it('reads a layers model saved by tfjs itself (Sequential and functional)', async () => {
      const seq = tf.sequential({
        layers: [
          tf.layers.zeroPadding2d({ inputShape: [8, 8, 3], padding: 1 }),
          tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu' }),
          tf.layers.batchNormalization(),
          tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', depthMultiplier: 2 }),
          tf.layers.reLU({ maxValue: 6 }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          tf.layers.dropout({ rate: 0.5 }),
          tf.layers.dense({ units: 5, activation: 'softmax' }),
        ],
      });
      const inp = tf.input({ shape: [6, 6, 2] });
      const c1 = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same' }).apply(inp) as tf.SymbolicTensor;
      const c2 = tf.layers.conv2d({ filters: 3, kernelSize: 1 }).apply(inp) as tf.SymbolicTensor;
      const sum = tf.layers.add().apply([c1, c2]) as tf.SymbolicTensor;
      const cat = tf.layers.concatenate().apply([sum, tf.layers.activation({ activation: 'tanh' }).apply(c1) as tf.SymbolicTensor]) as tf.SymbolicTensor;
      const pooled = tf.layers.averagePooling2d({ poolSize: 2 }).apply(cat) as tf.SymbolicTensor;
      const gap = tf.layers.globalAveragePooling2d({}).apply(pooled) as tf.SymbolicTensor;
      const fn = tf.model({ inputs: inp, outputs: tf.layers.dense({ units: 4 }).apply(gap) as tf.SymbolicTensor });
      for (const [name, model, shape] of [['sequential', seq, [2, 8, 8, 3]], ['functional', fn, [2, 6, 6, 2]]] as const) {
        // make the BatchNormalization statistics non-trivial
        model.setWeights(model.getWeights().map((t, k) => tf.add(tf.mul(tf.randomUniform(t.shape, -1, 1, 'float32', k), 0.5), (t as unknown as { name: string }).name.includes('variance') ? 1 : 0)));
        const dir = join(tmp, `layers-${name}`);
        await model.save(tf.io.withSaveHandler(async (a) => {
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
          writeFileSync(join(dir, 'weights.bin'), new Uint8Array(a.weightData as ArrayBuffer));
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }));
        const x = randn(shape.reduce((p, q) => p * q, 1), 77);
        const want = (model.predict(tf.tensor(x, [...shape])) as tf.Tensor).dataSync() as Float32Array;
        const onnx = await loadTfjs(dir);
        const inputName = onnx.graph.inputs[0]!.name;
        const got = await ort(onnx, { [inputName]: { dtype: 'float32', dims: shape, data: x } });
        const d = maxDiff(Object.values(got)[0]!.data as Float32Array, want);
        note(`layers model: ${name} (onnxruntime vs tfjs predict)`, d);
        expect(d).to.be.below(TOL);
        const f = join(tmp, `layers-${name}.onnx`);
        await saveModel(onnx, f);
        checkerFiles.push(f);
      }
    });
  });

  describe('errors', () => {
    it('names every unsupported op and node in one GraphError', async () => {
      const m = single({ op: 'Relu', inputs: X });
      const g = m.graph;
      g.outputs.length = 0;
      const a = g.addNode({ opType: 'Erf', name: 'erf_1', inputs: [g.value('y')] }).output();
      const b = g.addNode({ opType: 'LSTMish', name: 'weird', inputs: [a] }).output();
      const c = g.addNode({ opType: 'Erf', name: 'erf_2', inputs: [b] }).output();
      const d = g.addNode({ opType: 'Conv', name: 'conv3d', inputs: [c, g.addInitializer('w3', Tensor.from('float32', [1, 4, 1, 1, 1], new Float32Array(4)))] }).output();
      d.type = { kind: 'tensor', elemType: 'float32' };
      g.outputs.push(d);
      let err: unknown;
      try {
        await onnxToTfjs(m);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(GraphError);
      const msg = (err as Error).message;
      expect(msg).to.match(/unsupported ops: .*Erf \(nodes "erf_\d", "erf_\d"\)/);
      expect(msg).to.include('LSTMish (node "weird")');
    });

    it('reports an unsupported attribute combination with its node', async () => {
      const m = single({ op: 'Conv', inputs: X, consts: [w(4, 4, 3, 3)], attrs: { strides: is([2, 2]), dilations: is([2, 2]) } });
      let err: unknown;
      await onnxToTfjs(m).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(GraphError);
      expect((err as Error).message).to.include('Conv node "conv_node": strides [2,2] with dilations [2,2]');
    });

    async function tfjsDir(name: string): Promise<string> {
      const dir = join(tmp, name);
      await saveTfjs(await loadModel('fixtures/fmnist-mlp.onnx'), dir);
      return dir;
    }

    it('refuses weight paths that leave the model folder (../, absolute, links)', async () => {
      const dir = await tfjsDir('hostile');
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as TfjsModelJson;
      writeFileSync(join(tmp, 'outside.bin'), readFileSync(join(dir, 'group1-shard1of1.bin')));
      for (const p of ['../outside.bin', join(tmp, 'outside.bin'), 'sub/../../outside.bin']) {
        json.weightsManifest[0]!.paths = [p];
        writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
        let err: unknown;
        await loadTfjs(dir).catch((e: unknown) => (err = e));
        expect(err, p).to.be.instanceOf(LoadError);
        expect((err as Error).message).to.match(/leaves the model's folder|must be relative/);
      }
      symlinkSync(join(tmp, 'outside.bin'), join(dir, 'link.bin'));
      json.weightsManifest[0]!.paths = ['link.bin'];
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      let err: unknown;
      await loadTfjs(dir).catch((e: unknown) => (err = e));
      expect((err as Error).message).to.include('is a link that leaves');
    });

    it('names a missing or short weight file', async () => {
      const dir = await tfjsDir('short');
      const bin = join(dir, 'group1-shard1of1.bin');
      const bytes = readFileSync(bin);
      writeFileSync(bin, bytes.subarray(0, 100));
      let err: unknown;
      await loadTfjs(dir).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(LoadError);
      expect((err as Error).message).to.match(/hold 100 bytes but the manifest needs \d+/);
      rmSync(bin);
      await loadTfjs(dir).catch((e: unknown) => (err = e));
      expect((err as Error).message).to.include('weight file "group1-shard1of1.bin" does not exist');
      writeFileSync(join(dir, 'model.json'), '{"modelTopology": ');
      await loadTfjs(dir).catch((e: unknown) => (err = e));
      expect((err as Error).message).to.include('not valid JSON');
    });

    it('names unsupported TF ops when reading a graph model', () => {
      const json = { format: 'graph-model', modelTopology: { node: [{ name: 'x', op: 'Placeholder', attr: {} }, { name: 'a', op: 'Cumsum', input: ['x'] }, { name: 'b', op: 'Erf', input: ['a'] }] }, weightsManifest: [] };
      expect(() => tfjsToOnnx(json, new Uint8Array())).to.throw(GraphError, /unsupported ops: (Erf \(node "b"\), Cumsum \(node "a"\)|Cumsum \(node "a"\), Erf \(node "b"\))/);
    });
  });

  describe('ONNX checker (python3-onnx)', () => {
    it('passes the models converted back to ONNX', function () {
      if (!hasPython('onnx')) this.skip();
      expect(checkerFiles.length).to.be.greaterThan(5);
      const res = runPython<string[]>(
        'import json, sys, onnx\nout = []\nfor f in json.load(sys.stdin):\n    try:\n        onnx.checker.check_model(onnx.load(f), full_check=True); out.append("ok")\n    except Exception as e:\n        out.append(f"{f}: {e}")\nprint(json.dumps(out))',
        checkerFiles,
      );
      expect(res.filter((r) => r !== 'ok')).to.deep.equal([]);
    });
  });
});
