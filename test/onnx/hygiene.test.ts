/**
 * Graph hygiene passes (src/onnx/hygiene): every numeric check is against onnxruntime running the model before the
 * pass, never against this code.
 *
 * - the Fashion-MNIST fixtures (the CNN has two unfused BatchNormalization after Convs);
 * - hand-built models for each rewrite case (grouped, depthwise, 1-D/3-D and transposed convolutions, Gemm with
 *   every C shape and transB, MatMul(+Add), float16 weights, weights shared between nodes, Constant-node forms,
 *   blow-up limits, subgraphs) and for each reason to leave a node alone;
 * - every ONNX conformance model that onnxruntime can load and run, through every pass: outputs must stay equal,
 *   the graph must validate and load in onnxruntime, and a second run must change nothing; plus the conformance
 *   BatchNorm models with a Conv put in front of them;
 * - the ONNX checker (Debian's python3-onnx) on saved folded models.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import { Graph, Model, OptionsError, PassError, Tensor, attr, encodeModel, loadModel, saveModel, type DType, type Dim, type Node, type Value } from '../../src/index.js';
import { runPass, type Pass, type PassResult } from '../../src/pass.js';
import { float16ToFloat32, float32ToFloat16 } from '../../src/onnx/codecs.js';
import { decodeTensor } from '../../src/onnx/proto.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import {
  HYGIENE_PASSES,
  NON_DETERMINISTIC_OPS,
  cleanup,
  cleanupPass,
  foldBatchNorm,
  foldBatchNormPass,
  foldConstants,
  foldConstantsPass,
  removeIdentity,
  removeIdentityPass,
  removeUnused,
  removeUnusedPass,
} from '../../src/onnx/hygiene/index.js';
import { conformanceCases } from '../helpers/conformance.js';
import { hasPython, runPython } from '../helpers/python.js';
import { mulberry32 } from '../../src/util/random.js';

// ---------------------------------------------------------------------------------------------------------------
// helpers

type Feeds = Record<string, Tensor>;
type Outputs = Record<string, RunTensor>;

/** Runs a model on onnxruntime (CPU, one thread, no graph optimizations: we compare our rewrites, not onnxruntime's). */
async function ortRun(model: Model | Uint8Array, feeds: Feeds): Promise<Outputs> {
  const r = await Runner.create(model, { threads: 1, graphOptimizationLevel: 'disabled' });
  try {
    return await r.run(feeds);
  } finally {
    await r.release();
  }
}

/** Tolerances: exact (NaN equals NaN), or |a - b| ≤ abs + rel·|b|. */
interface Tol {
  rel: number;
  abs: number;
}
const EXACT: Tol = { rel: 0, abs: 0 };
const BN_TOL: Tol = { rel: 1e-4, abs: 1e-5 };

function asNumbers(t: RunTensor): number[] | string[] {
  if (Array.isArray(t.data)) return t.data;
  if (t.dtype === 'float16') return Array.from(float16ToFloat32(t.data as Uint16Array));
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Describes the first difference between two output sets, or returns undefined when they agree. */
function diff(got: Outputs, want: Outputs, tol: Tol): string | undefined {
  const names = Object.keys(want);
  if (Object.keys(got).sort().join() !== [...names].sort().join()) return `outputs ${Object.keys(got)} instead of ${names}`;
  for (const n of names) {
    const a = got[n]!;
    const b = want[n]!;
    if (a.dtype !== b.dtype || a.dims.join() !== b.dims.join()) return `"${n}": ${a.dtype}[${a.dims}] instead of ${b.dtype}[${b.dims}]`;
    const x = asNumbers(a);
    const y = asNumbers(b);
    for (let i = 0; i < y.length; i++) {
      const p = x[i]!;
      const q = y[i]!;
      if (p === q) continue;
      if (typeof p === 'number' && typeof q === 'number') {
        if (Number.isNaN(p) && Number.isNaN(q)) continue;
        if (Math.abs(p - q) <= tol.abs + tol.rel * Math.abs(q)) continue;
      }
      return `"${n}"[${i}] = ${p} instead of ${q}`;
    }
  }
  return undefined;
}

/** Outputs with their data dropped, to compare dtypes and shapes of random results. */
const shapesOnly = (o: Outputs): Outputs => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, { ...v, data: new Float32Array(0) }]));

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const rng = mulberry32;
function randn(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}
const count = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Model building: an empty model, graph inputs, float initializers, outputs. */
function newModel(opset = 13, ir = 8): Model {
  const m = new Model();
  m.irVersion = ir;
  m.opsetImports.set('', opset);
  m.graph.name = 'test';
  return m;
}
function input(g: Graph, name: string, shape: Dim[], elemType: DType = 'float32'): Value {
  const v = g.declareValue(name);
  v.type = { kind: 'tensor', elemType, shape };
  g.inputs.push(v);
  return v;
}
function floats(g: Graph, name: string, dims: number[], seed: number, lo = -1, hi = 1, dtype: 'float32' | 'float16' = 'float32'): Value {
  const x = randn(count(dims), seed, lo, hi);
  return g.addInitializer(name, dtype === 'float32' ? Tensor.from('float32', dims, x) : Tensor.from('float16', dims, float32ToFloat16(x)));
}
function output(g: Graph, v: Value, elemType: DType = 'float32'): Value {
  v.type ??= { kind: 'tensor', elemType };
  g.outputs.push(v);
  return v;
}
/** An inference BatchNormalization over `channels` channels reading x, with random (positive-variance) parameters. */
function batchNorm(g: Graph, x: Value, channels: number, seed: number, dtype: 'float32' | 'float16' = 'float32'): Node {
  return g.addNode({
    opType: 'BatchNormalization',
    name: `bn${seed}`,
    inputs: [
      x,
      floats(g, `gamma${seed}`, [channels], seed + 1, 0.5, 2, dtype),
      floats(g, `beta${seed}`, [channels], seed + 2, -1, 1, dtype),
      floats(g, `mean${seed}`, [channels], seed + 3, -1, 1, dtype),
      floats(g, `var${seed}`, [channels], seed + 4, 0.1, 3, dtype),
    ],
    attributes: { epsilon: attr.float(1e-3) },
  });
}
function feed(shape: number[], seed: number, dtype: 'float32' | 'float16' = 'float32'): Tensor {
  const x = randn(count(shape), seed, -2, 2);
  return dtype === 'float32' ? Tensor.from('float32', shape, x) : Tensor.from('float16', shape, float32ToFloat16(x));
}
const ops = (m: Model) => m.graph.nodes.map((n) => n.opType);
/** A copy of a model through its bytes (passes edit in place). */
const copyOf = (m: Model) => loadModel(encodeModel(m));

/**
 * Runs a pass on a copy, checks it validates, loads and runs in onnxruntime with outputs within `tol` of the
 * original's, and that a second run reports no change. Returns the result for further checks.
 */
async function checkPass(pass: Pass, original: Model, feeds: Feeds, tol: Tol, options: Record<string, unknown> = {}): Promise<PassResult & { before: Outputs; after: Outputs }> {
  const before = await ortRun(original, feeds);
  const model = await copyOf(original);
  const r = await runPass(pass, model, options);
  expect(model.graph.problems(), 'problems after the pass').to.deep.equal([]);
  const after = await ortRun(model, feeds);
  expect(diff(after, before, tol)).to.equal(undefined);
  const again = await runPass(pass, model, options);
  expect(again.modified, `second run of ${pass.name}: ${again.notes}`).to.equal(false);
  return { ...r, before, after };
}

/** The first n Fashion-MNIST test images of the fixture slice, preprocessed as the fixtures' README says. */
function fmnistImages(n: number): Float32Array {
  const raw = gunzipSync(readFileSync('fixtures/fmnist-test-256/images-idx3-ubyte.gz'));
  const px = raw.subarray(16, 16 + n * 784);
  return Float32Array.from(px, (p) => (p * 0.00392156862745098 - 0.286) / 0.353);
}

/** The feeds of a conformance case's first data set, by graph input; undefined when an input is not a tensor. */
function caseFeeds(dataSet: string | undefined, model: Model): Feeds | undefined {
  const ins = model.graph.inputs.filter((v) => !v.initializer);
  if (!dataSet || ins.some((v) => v.type?.kind !== 'tensor')) return undefined;
  const feeds: Feeds = {};
  ins.forEach((v, i) => {
    const file = join(dataSet, `input_${i}.pb`);
    feeds[v.name] = decodeTensor(fromBinary(TensorProtoSchema, readFileSync(file)), { source: file });
  });
  return feeds;
}

/** Saved models to run the ONNX checker over at the end. */
const checkerFiles: string[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'onnxpress-hygiene-'));
async function saveForChecker(m: Model, name: string, outputs: Outputs): Promise<void> {
  // the checker wants a shape on every graph output: take it from onnxruntime's result where the model has none
  for (const v of m.graph.outputs) {
    const o = outputs[v.name];
    if (o && v.type?.kind === 'tensor' && !v.type.shape) v.type = { ...v.type, shape: [...o.dims] };
  }
  const file = join(tmp, `${name}.onnx`);
  await saveModel(m, file);
  checkerFiles.push(file);
}

// ---------------------------------------------------------------------------------------------------------------

describe('onnx/hygiene', function () {
  this.timeout(60_000);
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('lists every pass once, namespaced, in place, with option schemas that accept {}', function () {
    expect(HYGIENE_PASSES.map((p) => p.name)).to.deep.equal(['hygiene.foldConstants', 'hygiene.removeIdentity', 'hygiene.foldBatchNorm', 'hygiene.removeUnused', 'hygiene.all']);
    for (const p of HYGIENE_PASSES) {
      expect(p.inPlace, p.name).to.equal(true);
      expect(p.options.safeParse({}).success, p.name).to.equal(true);
    }
  });

  describe('fixtures', function () {
    const images = fmnistImages(64);

    it('folds both BatchNormalization of the CNN into its Convs: logits within 1e-4 of onnxruntime, same predictions', async function () {
      const original = await loadModel('fixtures/fmnist-cnn.onnx');
      expect(ops(original).filter((o) => o === 'BatchNormalization')).to.have.length(2);
      const feeds = { input: Tensor.from('float32', [64, 1, 28, 28], images) };
      const r = await checkPass(foldBatchNormPass, original, feeds, BN_TOL);
      expect(r.modified).to.equal(true);
      expect(ops(r.model)).to.not.include('BatchNormalization');
      expect(ops(r.model)).to.deep.equal(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
      expect(r.notes).to.deep.equal([
        'folded node "/features/features.1/BatchNormalization" (BatchNormalization) into node "/features/features.0/Conv" (Conv)',
        'folded node "/features/features.5/BatchNormalization" (BatchNormalization) into node "/features/features.4/Conv" (Conv)',
      ]);
      // the BN parameters are gone; the conv weights keep their names
      expect([...r.model.graph.initializers.keys()].sort()).to.deep.equal(
        ['classifier.1.bias', 'classifier.1.weight', 'classifier.4.bias', 'classifier.4.weight', 'features.0.bias', 'features.0.weight', 'features.4.bias', 'features.4.weight'],
      );
      const argmax = (t: RunTensor) => Array.from({ length: 64 }, (_, i) => {
        const row = Array.from((t.data as Float32Array).subarray(i * 10, i * 10 + 10));
        return row.indexOf(Math.max(...row));
      });
      expect(argmax(r.after.logits!)).to.deep.equal(argmax(r.before.logits!));
      await saveForChecker(r.model, 'fmnist-cnn-folded', r.after);
    });

    it('cleanup on the CNN folds the same way; on the MLP (already clean) changes nothing', async function () {
      const cnn = await loadModel('fixtures/fmnist-cnn.onnx');
      const r = await checkPass(cleanupPass, cnn, { input: Tensor.from('float32', [64, 1, 28, 28], images) }, BN_TOL);
      expect(r.modified).to.equal(true);
      expect(ops(r.model).filter((o) => o === 'BatchNormalization')).to.deep.equal([]);
      const mlp = await loadModel('fixtures/fmnist-mlp.onnx');
      const bytes = encodeModel(mlp);
      for (const pass of HYGIENE_PASSES) {
        const m = await loadModel(bytes);
        const res = await runPass(pass, m);
        expect(res.modified, pass.name).to.equal(false);
        expect(Buffer.compare(encodeModel(m), bytes), pass.name).to.equal(0);
      }
    });
  });

  describe('hygiene.foldBatchNorm', function () {
    /** x [2, cin, spatial…] → Conv/ConvTranspose → BN → y, compared with onnxruntime on the unfolded model. */
    async function convCase(o: { op?: 'Conv' | 'ConvTranspose'; cin: number; cout: number; group: number; spatial: number[]; kernel: number[]; bias: boolean; seed: number }) {
      const m = newModel();
      const g = m.graph;
      const op = o.op ?? 'Conv';
      const x = input(g, 'x', [2, o.cin, ...o.spatial]);
      const wDims = op === 'Conv' ? [o.cout, o.cin / o.group, ...o.kernel] : [o.cin, o.cout / o.group, ...o.kernel];
      const inputs = [x, floats(g, 'W', wDims, o.seed)];
      if (o.bias) inputs.push(floats(g, 'B', [o.cout], o.seed + 10));
      const conv = g.addNode({ opType: op, name: 'conv', inputs, attributes: { group: attr.int(o.group), pads: attr.ints(o.kernel.flatMap((k) => [k >> 1, k >> 1])) } });
      output(g, batchNorm(g, conv.output(), o.cout, o.seed + 20).output());
      const r = await checkPass(foldBatchNormPass, m, { x: feed([2, o.cin, ...o.spatial], o.seed) }, BN_TOL);
      expect(r.modified).to.equal(true);
      expect(ops(r.model)).to.deep.equal([op]);
      expect([...r.model.graph.initializers.keys()].sort()).to.deep.equal(o.bias ? ['B', 'W'] : ['W', 'conv_bias']);
      return r;
    }

    it('Conv: groups 1, 2 and depthwise, with and without bias, 1-D, 2-D and 3-D', async function () {
      await convCase({ cin: 4, cout: 6, group: 1, spatial: [7, 7], kernel: [3, 3], bias: true, seed: 1 });
      await convCase({ cin: 4, cout: 6, group: 2, spatial: [5, 6], kernel: [3, 1], bias: false, seed: 2 });
      await convCase({ cin: 4, cout: 8, group: 4, spatial: [6, 6], kernel: [3, 3], bias: true, seed: 3 });
      await convCase({ cin: 3, cout: 5, group: 1, spatial: [9], kernel: [3], bias: false, seed: 4 });
      const r = await convCase({ cin: 2, cout: 4, group: 2, spatial: [3, 4, 5], kernel: [1, 3, 3], bias: true, seed: 5 });
      await saveForChecker(r.model, 'conv3d-folded', r.after);
    });

    it('ConvTranspose ([Cin, Cout/g, …] weights): groups 1 and 2, with and without bias', async function () {
      await convCase({ op: 'ConvTranspose', cin: 3, cout: 5, group: 1, spatial: [4, 4], kernel: [3, 3], bias: true, seed: 6 });
      const r = await convCase({ op: 'ConvTranspose', cin: 4, cout: 6, group: 2, spatial: [5, 3], kernel: [3, 2], bias: false, seed: 7 });
      await saveForChecker(r.model, 'convtranspose-folded', r.after);
    });

    it('Gemm: transB 0/1, C absent, scalar, [N], [1, N], [M, N], alpha and beta ≠ 1', async function () {
      const M = 3;
      const K = 5;
      const N = 4;
      const cShapes: (number[] | null)[] = [null, [], [N], [1, N], [M, N], [1]];
      let seed = 100;
      for (const transB of [0, 1]) {
        for (const cShape of cShapes) {
          seed += 10;
          const m = newModel();
          const g = m.graph;
          const a = input(g, 'a', [M, K]);
          const inputs = [a, floats(g, 'B', transB ? [N, K] : [K, N], seed)];
          if (cShape) inputs.push(floats(g, 'C', cShape, seed + 1));
          const gemm = g.addNode({ opType: 'Gemm', name: 'gemm', inputs, attributes: { transB: attr.int(transB), alpha: attr.float(0.75), beta: attr.float(cShape ? 1.5 : 1) } });
          output(g, batchNorm(g, gemm.output(), N, seed + 2).output());
          const r = await checkPass(foldBatchNormPass, m, { a: feed([M, K], seed) }, BN_TOL);
          expect(ops(r.model), `transB ${transB}, C ${JSON.stringify(cShape)}`).to.deep.equal(['Gemm']);
          expect(r.model.graph.node('gemm').getFloat('beta')).to.equal(1);
        }
      }
    });

    it('MatMul + Add (either operand order) and MatMul alone (an Add is inserted), when the input is known to be 2-D', async function () {
      for (const [variant, seed] of [['add', 200], ['add-swapped', 210], ['none', 220]] as const) {
        const m = newModel();
        const g = m.graph;
        const a = input(g, 'a', [3, 5]);
        const mm = g.addNode({ opType: 'MatMul', name: 'mm', inputs: [a, floats(g, 'W', [5, 4], seed)] });
        let y = mm.output();
        if (variant !== 'none') {
          const b = floats(g, 'b', [4], seed + 1);
          y = g.addNode({ opType: 'Add', name: 'add', inputs: variant === 'add' ? [y, b] : [b, y] }).output();
        }
        output(g, batchNorm(g, y, 4, seed + 2).output());
        const r = await checkPass(foldBatchNormPass, m, { a: feed([3, 5], seed) }, BN_TOL);
        expect(ops(r.model), variant).to.deep.equal(['MatMul', 'Add']);
        expect(r.model.graph.outputs[0]!.name).to.equal(`bn${seed + 2}_out`);
      }
      // a 3-D input would have BN scale axis 1, not MatMul's columns: left alone
      const m = newModel();
      const g = m.graph;
      const mm = g.addNode({ opType: 'MatMul', name: 'mm', inputs: [input(g, 'a', [2, 4, 5]), floats(g, 'W', [5, 4], 1)] });
      output(g, batchNorm(g, mm.output(), 4, 3).output());
      const r = await checkPass(foldBatchNormPass, m, { a: feed([2, 4, 5], 1) }, EXACT);
      expect(r.modified).to.equal(false);
      expect(r.notes![0]).to.match(/left node "bn3" \(BatchNormalization\): node "mm" \(MatMul\): its first input is not known to be 2-D/);
    });

    it('float16 weights and BN parameters are folded through codecs (within float16 rounding of onnxruntime)', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [1, 4, 5, 5], 'float16');
      const conv = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, floats(g, 'W', [4, 2, 3, 3], 9, -1, 1, 'float16'), floats(g, 'B', [4], 8, -1, 1, 'float16')], attributes: { group: attr.int(2) } });
      output(g, batchNorm(g, conv.output(), 4, 30, 'float16').output(), 'float16');
      const r = await checkPass(foldBatchNormPass, m, { x: feed([1, 4, 5, 5], 3, 'float16') }, { rel: 1e-2, abs: 1e-2 });
      expect(ops(r.model)).to.deep.equal(['Conv']);
      expect(r.model.graph.value('W').initializer!.dtype).to.equal('float16');
    });

    it('BN parameters and weights given as Constant nodes fold too, and the Constants go', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [1, 3, 4, 4]);
      const k = (name: string, dims: number[], seed: number, lo = -1, hi = 1) =>
        g.addNode({ opType: 'Constant', name: `const_${name}`, outputs: [name], attributes: { value: attr.tensor(Tensor.from('float32', dims, randn(count(dims), seed, lo, hi))) } }).output();
      const conv = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, k('W', [3, 3, 1, 1], 1)] });
      const bn = g.addNode({ opType: 'BatchNormalization', name: 'bn', inputs: [conv.output(), k('s', [3], 2, 0.5, 2), k('b', [3], 3), k('m', [3], 4), k('v', [3], 5, 0.5, 2)] });
      output(g, bn.output());
      const r = await checkPass(foldBatchNormPass, m, { x: feed([1, 3, 4, 4], 1) }, BN_TOL);
      expect(ops(r.model)).to.deep.equal(['Conv']);
    });

    it('a weight shared with another node is copied, not changed for that node', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [1, 3, 6, 6]);
      const W = floats(g, 'W', [3, 3, 3, 3], 11);
      const before = W.initializer!;
      const c1 = g.addNode({ opType: 'Conv', name: 'c1', inputs: [x, W] });
      const c2 = g.addNode({ opType: 'Conv', name: 'c2', inputs: [x, W] });
      output(g, batchNorm(g, c1.output(), 3, 40).output());
      output(g, c2.output());
      const r = await checkPass(foldBatchNormPass, m, { x: feed([1, 3, 6, 6], 2) }, BN_TOL);
      const out = r.model.graph;
      expect(out.node('c2').inputs[1]!.name).to.equal('W');
      expect(out.node('c1').inputs[1]!.name).to.equal('W_bnfold');
      expect(out.value('W').initializer!.toNumbers()).to.deep.equal(before.toNumbers());
    });

    it('leaves a BN alone, with a note saying why: standalone, output read elsewhere, graph output, training mode, non-constant parameters', async function () {
      const cases: [string, (g: Graph, x: Value) => void, RegExp][] = [
        ['standalone', (g, x) => output(g, batchNorm(g, x, 3, 50).output()), /left node "bn50" \(BatchNormalization\): no Conv, ConvTranspose, Gemm or MatMul before it/],
        [
          'conv output read twice',
          (g, x) => {
            const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, floats(g, 'W', [3, 3, 1, 1], 1)] });
            output(g, batchNorm(g, c.output(), 3, 60).output());
            output(g, g.addNode({ opType: 'Relu', inputs: [c.output()] }).output());
          },
          /the output "conv_out" of node "conv" \(Conv\) is read elsewhere too/,
        ],
        [
          'conv output is a graph output',
          (g, x) => {
            const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, floats(g, 'W', [3, 3, 1, 1], 1)] });
            output(g, batchNorm(g, c.output(), 3, 70).output());
            output(g, c.output());
          },
          /is read elsewhere too/,
        ],
        [
          'non-constant scale',
          (g, x) => {
            const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, floats(g, 'W', [3, 3, 1, 1], 1)] });
            const bn = batchNorm(g, c.output(), 3, 80);
            bn.setInput(1, input(g, 'scale', [3]));
            output(g, bn.output());
          },
          /its scale, bias, mean and variance are not all constant/,
        ],
        [
          'conv bias is a graph input',
          (g, x) => {
            const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, floats(g, 'W', [3, 3, 1, 1], 1), input(g, 'B', [3])] });
            output(g, batchNorm(g, c.output(), 3, 85).output());
          },
          /node "conv" \(Conv\): its bias is not constant/,
        ],
        [
          'conv weight is a graph input',
          (g, x) => {
            const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, input(g, 'W', [3, 3, 1, 1])] });
            output(g, batchNorm(g, c.output(), 3, 90).output());
          },
          /node "conv" \(Conv\): its weight is not a float constant/,
        ],
      ];
      for (const [what, build, note] of cases) {
        const m = newModel();
        const x = input(m.graph, 'x', [1, 3, 4, 4]);
        build(m.graph, x);
        const feeds: Feeds = { x: feed([1, 3, 4, 4], 1) };
        for (const v of m.graph.inputs) feeds[v.name] ??= feed(v.shape as number[], 2);
        const r = await checkPass(foldBatchNormPass, m, feeds, EXACT);
        expect(r.modified, what).to.equal(false);
        expect(r.notes!.join('\n'), what).to.match(note);
        expect(ops(r.model), what).to.include('BatchNormalization');
      }
      // training mode (opset 14): not folded, and not run (onnxruntime's CPU kernel is inference-only)
      const m = newModel(15);
      const c = m.graph.addNode({ opType: 'Conv', name: 'conv', inputs: [input(m.graph, 'x', [1, 3, 4, 4]), floats(m.graph, 'W', [3, 3, 1, 1], 1)] });
      const bn = batchNorm(m.graph, c.output(), 3, 99);
      bn.setAttr('training_mode', attr.int(1));
      output(m.graph, bn.output());
      const r = await foldBatchNorm(m);
      expect(r.modified).to.equal(false);
      expect(r.notes).to.deep.equal(['left node "bn99" (BatchNormalization): it is in training mode']);
    });
  });

  describe('hygiene.removeIdentity', function () {
    it('removes Identity chains, keeps the graph output names, and leaves input→output Identity alone', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [2, 3]);
      const i1 = g.addNode({ opType: 'Identity', name: 'i1', inputs: [x] });
      const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [i1.output()] });
      const i2 = g.addNode({ opType: 'Identity', name: 'i2', inputs: [relu.output()], outputs: ['y'] });
      const i3 = g.addNode({ opType: 'Identity', name: 'i3', inputs: [i2.output()], outputs: ['z'] });
      output(g, i2.output());
      output(g, i3.output());
      output(g, g.addNode({ opType: 'Identity', name: 'passthrough', inputs: [x], outputs: ['x_copy'] }).output());
      output(g, g.addNode({ opType: 'Identity', name: 'const_out', inputs: [floats(g, 'c', [2], 1)], outputs: ['c_copy'] }).output());
      const r = await checkPass(removeIdentityPass, m, { x: feed([2, 3], 1) }, EXACT);
      expect(r.model.graph.outputs.map((v) => v.name)).to.deep.equal(['y', 'z', 'x_copy', 'c_copy']);
      expect(r.model.graph.nodes.map((n) => n.name)).to.deep.equal(['relu', 'i3', 'passthrough', 'const_out']);
      expect(r.notes![0]).to.equal('removed 2 Identity/Dropout nodes');
    });

    it('removes inference Dropout (no mask read, training_mode absent or false); keeps training mode and a read mask', async function () {
      const m = newModel(13);
      const g = m.graph;
      const x = input(g, 'x', [4, 5]);
      const off = g.addInitializer('off', Tensor.from('bool', [], [0]));
      const on = g.addInitializer('on', Tensor.from('bool', [], [1]));
      const ratio = g.addInitializer('ratio', Tensor.from('float32', [], [0.5]));
      const d1 = g.addNode({ opType: 'Dropout', name: 'd1', inputs: [x] });
      const d2 = g.addNode({ opType: 'Dropout', name: 'd2', inputs: [d1.output(), ratio, off], outputs: ['d2_out', 'd2_mask'] });
      output(g, g.addNode({ opType: 'Neg', name: 'neg', inputs: [d2.output()] }).output());
      const d3 = g.addNode({ opType: 'Dropout', name: 'd3', inputs: [x, ratio], outputs: ['d3_out', 'd3_mask'] });
      output(g, d3.output(0));
      output(g, d3.output(1), 'bool');
      const d4 = g.addNode({ opType: 'Dropout', name: 'd4', inputs: [x, ratio, on] });
      output(g, g.addNode({ opType: 'Abs', name: 'abs', inputs: [d4.output()] }).output());
      const before = await ortRun(m, { x: feed([4, 5], 1) });
      const model = await copyOf(m);
      const r = await removeIdentity(model);
      expect(r.modified).to.equal(true);
      expect(model.graph.nodes.map((n) => n.name)).to.deep.equal(['neg', 'd3', 'd4', 'abs']);
      expect(r.notes).to.deep.equal([
        'removed 2 Identity/Dropout nodes',
        'left node "d3" (Dropout): its mask output "d3_mask" is read',
        'left node "d4" (Dropout): training_mode is true',
      ]);
      const after = await ortRun(model, { x: feed([4, 5], 1) });
      // d4 draws a random mask each run: compare the deterministic outputs only
      const { abs_out: _a, ...det } = after;
      const { abs_out: _b, ...detBefore } = before;
      expect(diff(det, detBefore, EXACT)).to.equal(undefined);
      expect((await removeIdentity(model)).modified).to.equal(false);
    });

    it('removes Identity inside If branches, including one that reads an outer value', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [3]);
      const cond = input(g, 'cond', [], 'bool');
      const branch = (name: string, op: string) => {
        const b = new Graph();
        b.name = name;
        const id = b.addNode({ opType: 'Identity', name: `${name}_id`, inputs: [x] });
        const y = b.addNode({ opType: op, name: `${name}_op`, inputs: [id.output()], outputs: [`${name}_y`] }).output();
        output(b, y);
        return b;
      };
      const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], attributes: { then_branch: { type: 'graph', value: branch('then', 'Neg') }, else_branch: { type: 'graph', value: branch('else', 'Abs') } } });
      for (const s of iff.subgraphs()) s.parent = iff;
      output(g, iff.output());
      const r = await checkPass(removeIdentityPass, m, { x: feed([3], 1), cond: Tensor.from('bool', [], [1]) }, EXACT);
      expect(r.modified).to.equal(true);
      expect([...r.model.graph.allNodes()].map((n) => n.opType)).to.deep.equal(['If', 'Neg', 'Abs']);
      const r2 = await checkPass(removeIdentityPass, m, { x: feed([3], 2), cond: Tensor.from('bool', [], [0]) }, EXACT);
      expect(r2.modified).to.equal(true);
    });
  });

  describe('hygiene.foldConstants', function () {
    it('turns every Constant form into an initializer of the right dtype, keeping names', async function () {
      const m = newModel(13);
      const g = m.graph;
      const x = input(g, 'x', [3]);
      const k = (name: string, a: Record<string, ReturnType<typeof attr.float>>) => g.addNode({ opType: 'Constant', name: `k_${name}`, outputs: [name], attributes: a }).output();
      const f = k('f', { value_float: attr.float(2.5) });
      const fs = k('fs', { value_floats: attr.floats([1, 2, 3]) });
      const i = k('i', { value_int: attr.int(2) });
      const is = k('is', { value_ints: attr.ints([3]) });
      const s = k('s', { value_string: attr.string('a') });
      const ss = k('ss', { value_strings: attr.strings(['b', 'c']) });
      const t = k('t', { value: attr.tensor(Tensor.from('float32', [3], [4, 5, 6])) });
      const y1 = g.addNode({ opType: 'Mul', inputs: [g.addNode({ opType: 'Add', inputs: [x, f] }).output(), fs] }).output();
      output(g, g.addNode({ opType: 'Add', inputs: [y1, t] }).output());
      const cast = (v: Value) => g.addNode({ opType: 'Cast', inputs: [v], attributes: { to: attr.int(1) } }).output();
      output(g, g.addNode({ opType: 'Add', name: 'int_sum', inputs: [cast(i), cast(is)] }).output());
      const unsq = g.addNode({ opType: 'Unsqueeze', name: 'unsq', inputs: [s, g.addInitializer('zero', Tensor.from('int64', [1], [0n]))] });
      output(g, g.addNode({ opType: 'Concat', name: 'concat', inputs: [unsq.output(), ss], attributes: { axis: attr.int(0) } }).output(), 'string');
      const r = await checkPass(foldConstantsPass, m, { x: feed([3], 1) }, EXACT);
      const inits = r.model.graph.initializers;
      expect(ops(r.model)).to.deep.equal(['Add', 'Mul', 'Add', 'Add', 'Concat']);
      const dtypes = Object.fromEntries(['f', 'fs', 'i', 'is', 's', 'ss', 't', 'unsq_out'].map((n) => [n, inits.get(n)?.initializer?.dtype]));
      expect(dtypes).to.deep.equal({ f: 'float32', fs: 'float32', i: 'int64', is: 'int64', s: 'string', ss: 'string', t: 'float32', unsq_out: 'string' });
      expect(inits.get('i')!.initializer!.dims).to.deep.equal([]);
      expect(inits.get('fs')!.initializer!.dims).to.deep.equal([3]);
      // nodes whose result is a graph output stay, named in a note
      expect(r.notes).to.include('left node "int_sum" (Add): its output is a graph output');
      expect(r.notes).to.include('left node "concat" (Concat): its output is a graph output');
      await saveForChecker(r.model, 'constants-folded', r.after);
    });

    it('folds a constant chain into one initializer, exactly as onnxruntime computes it', async function () {
      const m = newModel(13);
      const g = m.graph;
      const x = input(g, 'x', [4, 6]);
      const w = floats(g, 'w', [6, 4], 1);
      const wt = g.addNode({ opType: 'Transpose', name: 'wt', inputs: [w], attributes: { perm: attr.ints([1, 0]) } });
      const scaled = g.addNode({ opType: 'Mul', name: 'scaled', inputs: [wt.output(), g.addInitializer('three', Tensor.from('float32', [], [3]))] });
      const soft = g.addNode({ opType: 'Softmax', name: 'soft', inputs: [scaled.output()], attributes: { axis: attr.int(1) } });
      output(g, g.addNode({ opType: 'MatMul', name: 'mm', inputs: [x, g.addNode({ opType: 'Transpose', name: 'back', inputs: [soft.output()] }).output()] }).output());
      const r = await checkPass(foldConstantsPass, m, { x: feed([4, 6], 2) }, EXACT);
      expect(ops(r.model)).to.deep.equal(['MatMul']);
      expect(r.notes![0]).to.equal('folded 4 nodes into 1 initializer');
      expect(r.model.graph.node('mm').inputs[1]!.name).to.equal('back_out');
    });

    it('leaves blow-ups (ConstantOfShape, Expand, Tile, or any result) over the size limit, folds them under a larger one', async function () {
      const build = () => {
        const m = newModel(13);
        const g = m.graph;
        const x = input(g, 'x', [512, 1024]);
        const big = g.addNode({ opType: 'ConstantOfShape', name: 'big', inputs: [g.addInitializer('shape', Tensor.from('int64', [2], [512n, 1024n]))], attributes: { value: attr.tensor(Tensor.from('float32', [1], [0.5])) } });
        const tile = g.addNode({ opType: 'Tile', name: 'tile', inputs: [floats(g, 'row', [1, 1024], 3), g.addInitializer('reps', Tensor.from('int64', [2], [512n, 1n]))] });
        const range = g.addNode({ opType: 'Range', name: 'range', inputs: [0, 524288, 1].map((v, i) => g.addInitializer(`r${i}`, Tensor.from('float32', [], [v]))) });
        const flat = g.addNode({ opType: 'Reshape', name: 'flat', inputs: [range.output(), g.addInitializer('s2', Tensor.from('int64', [2], [512n, 1024n]))] });
        const sum = g.addNode({ opType: 'Sum', name: 'sum', inputs: [x, big.output(), tile.output(), flat.output()] });
        output(g, sum.output());
        return m;
      };
      const feeds = { x: feed([512, 1024], 5) };
      const r = await checkPass(foldConstantsPass, build(), feeds, EXACT);
      expect(ops(r.model)).to.deep.equal(['ConstantOfShape', 'Tile', 'Range', 'Reshape', 'Sum']);
      expect(r.notes).to.deep.equal([
        'left node "big" (ConstantOfShape): its result would take 2097152 bytes (limit 1048576, or 2x the constants it is made from)',
        'left node "tile" (Tile): its result would take 2097152 bytes (limit 1048576, or 2x the constants it is made from)',
        'left node "range" (Range): its result takes 2097152 bytes (limit 1048576, or 2x the constants it is made from)',
        'left node "flat" (Reshape): its result takes 2097152 bytes (limit 1048576, or 2x the constants it is made from)',
      ]);
      const r2 = await checkPass(foldConstantsPass, build(), feeds, EXACT, { maxOutputBytes: 4 << 20 });
      expect(ops(r2.model)).to.deep.equal(['Sum']);
    });

    it('leaves non-deterministic ops, and folds Shape of a static shape (not of a dynamic one)', async function () {
      const m = newModel(15);
      const g = m.graph;
      const x = input(g, 'x', [2, 3, 4]);
      const d = input(g, 'd', ['batch', 3]);
      const rnd = g.addNode({ opType: 'RandomNormalLike', name: 'rnd', inputs: [floats(g, 'c', [2, 2], 1)] });
      output(g, g.addNode({ opType: 'Shape', name: 'rnd_shape', inputs: [rnd.output()] }).output(), 'int64');
      const sx = g.addNode({ opType: 'Shape', name: 'sx', inputs: [x], attributes: { start: attr.int(1) } });
      output(g, g.addNode({ opType: 'Reshape', name: 'reshape', inputs: [x, g.addNode({ opType: 'Concat', name: 'cat', inputs: [g.addInitializer('minus1', Tensor.from('int64', [1], [-1n])), sx.output()], attributes: { axis: attr.int(0) } }).output()] }).output());
      output(g, g.addNode({ opType: 'Shape', name: 'sd', inputs: [d] }).output(), 'int64');
      const r = await checkPass(foldConstantsPass, m, { x: feed([2, 3, 4], 1), d: feed([5, 3], 2) }, EXACT);
      expect(ops(r.model)).to.deep.equal(['RandomNormalLike', 'Shape', 'Reshape', 'Shape']);
      expect(r.notes).to.include('left node "rnd" (RandomNormalLike): it is non-deterministic');
      expect(r.model.graph.node('reshape').inputs[1]!.initializer!.toNumbers()).to.deep.equal([-1, 3, 4]);
      expect(NON_DETERMINISTIC_OPS.has('RandomNormal')).to.equal(true);
    });

    it('when onnxruntime rejects the batch, folds node by node and names the node it cannot evaluate', async function () {
      const m = newModel(13);
      const g = m.graph;
      const x = input(g, 'x', [2]);
      const ok = g.addNode({ opType: 'Neg', name: 'ok', inputs: [floats(g, 'a', [2], 1)] });
      output(g, g.addNode({ opType: 'Add', inputs: [x, ok.output()] }).output());
      const bad = g.addNode({ opType: 'Reshape', name: 'bad', inputs: [floats(g, 'b', [3], 2), g.addInitializer('to', Tensor.from('int64', [1], [2n]))] });
      output(g, g.addNode({ opType: 'Add', inputs: [x, bad.output()] }).output());
      const r = await foldConstants(m);
      expect(r.modified).to.equal(true);
      expect(ops(m)).to.deep.equal(['Add', 'Reshape', 'Add']);
      expect(r.notes![1]).to.match(/^left node "bad" \(Reshape\): onnxruntime could not evaluate it \(.*\)$/);
    });

    it('leaves sparse Constants; errors name a Constant with no value', async function () {
      const m = newModel();
      const g = m.graph;
      const sparse = g.addNode({ opType: 'Constant', name: 'sparse', attributes: { sparse_value: { type: 'sparse_tensor', value: {} } } });
      output(g, g.addNode({ opType: 'Identity', inputs: [sparse.output()] }).output());
      const r = await foldConstants(m);
      expect(r.modified).to.equal(false);
      expect(r.notes).to.deep.equal(['left node "sparse" (Constant): it holds a sparse tensor (or an attribute reference)']);
      const m2 = newModel();
      const empty = m2.graph.addNode({ opType: 'Constant', name: 'empty' });
      output(m2.graph, m2.graph.addNode({ opType: 'Identity', inputs: [empty.output()] }).output());
      let err: unknown;
      await foldConstants(m2).catch((e) => (err = e));
      expect(err).to.be.instanceOf(PassError);
      expect((err as Error).message).to.equal('node "empty" (Constant) has no value attribute (expected one of value, value_float(s), value_int(s), value_string(s), sparse_value; found none)');
    });

    it('rejects bad options, naming the field', async function () {
      let err: unknown;
      await foldConstants(newModel(), { maxGrowth: -1 }).catch((e) => (err = e));
      expect(err).to.be.instanceOf(OptionsError);
      expect((err as Error).message).to.match(/^Invalid options for hygiene\.foldConstants: maxGrowth: /);
    });
  });

  describe('hygiene.removeUnused', function () {
    it('removes dead chains and unread initializers; keeps graph inputs and initializers read from a subgraph', async function () {
      const m = newModel();
      const g = m.graph;
      const x = input(g, 'x', [3]);
      input(g, 'unused_input', [3]);
      const cond = input(g, 'cond', [], 'bool');
      const dead1 = g.addNode({ opType: 'Neg', name: 'dead1', inputs: [x] });
      g.addNode({ opType: 'Mul', name: 'dead2', inputs: [dead1.output(), floats(g, 'only_dead', [3], 1)] });
      floats(g, 'never_read', [3], 2);
      const inner = floats(g, 'read_in_branch', [3], 3);
      const branch = (name: string) => {
        const b = new Graph();
        b.name = name;
        floats(b, `${name}_unread`, [2], 4);
        output(b, b.addNode({ opType: 'Add', name: `${name}_add`, inputs: [x, inner] }).output());
        return b;
      };
      const iff = g.addNode({ opType: 'If', name: 'if', inputs: [cond], attributes: { then_branch: { type: 'graph', value: branch('then') }, else_branch: { type: 'graph', value: branch('else') } } });
      for (const s of iff.subgraphs()) s.parent = iff;
      output(g, iff.output());
      // a dead If whose branch reads an outer value: the value's producer goes too
      const outer = g.addNode({ opType: 'Sigmoid', name: 'read_only_by_dead_if', inputs: [x] }).output();
      const deadBranch = (name: string) => {
        const b = new Graph();
        b.name = name;
        output(b, b.addNode({ opType: 'Neg', name: `${name}_neg`, inputs: [outer] }).output());
        return b;
      };
      const deadIf = g.addNode({ opType: 'If', name: 'dead_if', inputs: [cond], attributes: { then_branch: { type: 'graph', value: deadBranch('dead_then') }, else_branch: { type: 'graph', value: deadBranch('dead_else') } } });
      for (const s of deadIf.subgraphs()) s.parent = deadIf;
      const stale = g.declareValue('stale');
      stale.type = { kind: 'tensor', elemType: 'float32', shape: [1] };
      g.valueInfo.push(stale);
      const r = await checkPass(removeUnusedPass, m, { x: feed([3], 1), unused_input: feed([3], 2), cond: Tensor.from('bool', [], [1]) }, EXACT);
      expect(r.model.graph.nodes.map((n) => n.name)).to.deep.equal(['if']);
      expect([...r.model.graph.initializers.keys()]).to.deep.equal(['read_in_branch']);
      expect(r.model.graph.inputs.map((v) => v.name)).to.deep.equal(['x', 'unused_input', 'cond']);
      expect(r.model.graph.node('if').subgraphs().map((s) => s.initializers.size)).to.deep.equal([0, 0]);
      expect(r.model.graph.valueInfo).to.deep.equal([]);
      expect(r.notes).to.deep.equal(['removed 4 unread nodes', 'removed 4 unread initializers', 'dropped 1 stale value_info entry']);
    });

    it('before IR version 4, removes an unread initializer together with its graph-input entry', async function () {
      const m = newModel(7, 3);
      const g = m.graph;
      const x = input(g, 'x', [2]);
      const w = floats(g, 'w', [2], 1);
      const unread = floats(g, 'unread', [2], 2);
      g.inputs.push(w, unread);
      output(g, g.addNode({ opType: 'Add', inputs: [x, w] }).output());
      const r = await checkPass(removeUnusedPass, m, { x: feed([2], 1) }, EXACT);
      expect(r.model.graph.inputs.map((v) => v.name)).to.deep.equal(['x', 'w']);
      expect((await removeUnused(r.model)).modified).to.equal(false);
      await saveForChecker(r.model, 'ir3-unused', r.after);
    });
  });

  describe('hygiene.all (cleanup)', function () {
    it('reaches a fixed point: Constant-node parameters, Identity and Dropout between Conv and BN, dead nodes → one Conv', async function () {
      const m = newModel(13);
      const g = m.graph;
      const x = input(g, 'x', [1, 3, 5, 5]);
      const k = (name: string, dims: number[], seed: number, lo = -1, hi = 1) =>
        g.addNode({ opType: 'Constant', name: `const_${name}`, outputs: [name], attributes: { value: attr.tensor(Tensor.from('float32', dims, randn(count(dims), seed, lo, hi))) } }).output();
      const conv = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, k('W', [4, 3, 3, 3], 1), k('B', [4], 2)], attributes: { pads: attr.ints([1, 1, 1, 1]) } });
      const id = g.addNode({ opType: 'Identity', name: 'id', inputs: [conv.output()] });
      const drop = g.addNode({ opType: 'Dropout', name: 'drop', inputs: [id.output()] });
      // the variance is computed from constants: folding it first lets the BN fold
      const variance = g.addNode({ opType: 'Abs', name: 'abs', inputs: [k('v', [4], 6, -2, 2)] }).output();
      const bn = g.addNode({ opType: 'BatchNormalization', name: 'bn', inputs: [drop.output(), k('s', [4], 3, 0.5, 2), k('b', [4], 4), k('m', [4], 5), variance], outputs: ['y'] });
      output(g, bn.output());
      g.addNode({ opType: 'Neg', name: 'dead', inputs: [g.addNode({ opType: 'Relu', name: 'dead_too', inputs: [x] }).output()] });
      const r = await checkPass(cleanupPass, m, { x: feed([1, 3, 5, 5], 7) }, BN_TOL);
      expect(ops(r.model)).to.deep.equal(['Conv']);
      expect(r.model.graph.outputs.map((v) => v.name)).to.deep.equal(['y']);
      expect([...r.model.graph.initializers.keys()].sort()).to.deep.equal(['B', 'W']);
      expect(r.notes).to.include('folded node "bn" (BatchNormalization) into node "conv" (Conv)');
      const again = await cleanup(r.model);
      expect(again.modified).to.equal(false);
      // each pass alone leaves work for the others
      const partial = await copyOf(m);
      await cleanup(partial, { steps: ['foldConstants', 'foldBatchNorm'] });
      expect(ops(partial)).to.deep.equal(['Conv', 'Identity', 'Dropout', 'BatchNormalization', 'Relu', 'Neg']);
      await saveForChecker(r.model, 'cleanup', r.after);
    });
  });

  describe('conformance models (libonnx-testdata), every pass', function () {
    this.timeout(240_000);
    interface Ref {
      id: string;
      bytes: Uint8Array;
      feeds: Feeds;
      outputs: Outputs;
      /** Outputs differ between runs (random ops): compare dtypes and shapes only. */
      random: boolean;
    }
    const refs: Ref[] = [];
    /** Models onnxruntime cannot run here (or that take sequences): checked structurally only. */
    const others: { id: string; bytes: Uint8Array }[] = [];
    const skipped = { notRunnable: 0, nonTensorInputs: 0 };
    const cases = conformanceCases();

    before(async function () {
      if (!cases.length) throw new Error('libonnx-testdata is not installed: apt-get install libonnx-testdata');
      for (const c of cases) {
        const model = await loadModel(c.model);
        const feeds = caseFeeds(c.dataSets[0], model);
        const bytes = encodeModel(model);
        if (!feeds) {
          skipped.nonTensorInputs++;
          others.push({ id: c.id, bytes });
          continue;
        }
        let outputs: Outputs;
        let random = false;
        try {
          outputs = await ortRun(bytes, feeds);
          const usesRandom = [...model.graph.allNodes()].some((n) => NON_DETERMINISTIC_OPS.has(n.opType));
          if (usesRandom) random = diff(await ortRun(bytes, feeds), outputs, EXACT) !== undefined;
        } catch {
          skipped.notRunnable++;
          others.push({ id: c.id, bytes });
          continue;
        }
        refs.push({ id: c.id, bytes, feeds, outputs, random });
      }
    });

    /** Runs a pass over every runnable conformance model; returns how many it changed. */
    async function sweep(pass: Pass, tol: Tol): Promise<{ checked: number; changed: string[] }> {
      const failures: string[] = [];
      const changed: string[] = [];
      for (const ref of refs) {
        try {
          const model = await loadModel(ref.bytes);
          const r = await runPass(pass, model);
          const again = await runPass(pass, model);
          if (again.modified) throw new Error(`second run modified the model again: ${again.notes}`);
          if (!r.modified) {
            if (Buffer.compare(encodeModel(model), ref.bytes) !== 0) throw new Error('reported no change but the model changed');
            continue;
          }
          changed.push(ref.id);
          const problems = model.graph.problems();
          if (problems.length) throw new Error(`invalid graph: ${problems.join('; ')}`);
          const out = await ortRun(model, ref.feeds);
          const d = diff(ref.random ? shapesOnly(out) : out, ref.random ? shapesOnly(ref.outputs) : ref.outputs, tol);
          if (d) throw new Error(d);
        } catch (e) {
          failures.push(`${ref.id}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
      return { checked: refs.length, changed };
    }

    it('runs the originals: at least 950 load and run in onnxruntime (the rest are counted and skipped)', function () {
      expect(refs.length + skipped.notRunnable + skipped.nonTensorInputs).to.equal(cases.length);
      expect(refs.length).to.be.greaterThan(950);
      expect(skipped.notRunnable).to.be.lessThan(100);
      const random = refs.filter((r) => r.random).length;
      this.test!.title += ` (${refs.length} run, ${random} of them random: compared by dtype and shape; ${skipped.notRunnable} fail in onnxruntime, ${skipped.nonTensorInputs} take sequences/optionals)`;
    });

    it('every pass on the models onnxruntime cannot run: no error, a valid graph, nothing changed by a second run', async function () {
      const failures: string[] = [];
      let changed = 0;
      for (const o of others) {
        for (const pass of HYGIENE_PASSES) {
          try {
            const model = await loadModel(o.bytes);
            const r = await runPass(pass, model);
            if ((await runPass(pass, model)).modified) throw new Error('second run modified the model again');
            if (!r.modified && Buffer.compare(encodeModel(model), o.bytes) !== 0) throw new Error('reported no change but the model changed');
            if (r.modified) changed++;
            const problems = model.graph.problems();
            if (problems.length) throw new Error(`invalid graph: ${problems.join('; ')}`);
            encodeModel(model);
          } catch (e) {
            failures.push(`${o.id} ${pass.name}: ${(e as Error).message.split('\n')[0]}`);
          }
        }
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
      expect(others.length).to.equal(skipped.notRunnable + skipped.nonTensorInputs);
      this.test!.title += ` (${others.length} models × ${HYGIENE_PASSES.length} passes, ${changed} changes)`;
    });

    it('removeIdentity: outputs exactly equal', async function () {
      const { changed } = await sweep(removeIdentityPass, EXACT);
      expect(changed).to.include.members(['node/test_dynamicquantizelinear_expanded', 'node/test_sce_mean_log_prob_expanded']);
      // graph input straight to graph output: the Identity / Dropout must stay so the output keeps its name
      expect(changed).to.not.include.members(['node/test_identity', 'node/test_dropout_default', 'node/test_dropout_default_ratio']);
      expect(changed.length).to.be.greaterThan(15);
      this.test!.title += ` (${changed.length} of ${refs.length} changed)`;
    });

    it('removeUnused: outputs exactly equal', async function () {
      const { changed } = await sweep(removeUnusedPass, EXACT);
      this.test!.title += ` (${changed.length} of ${refs.length} changed)`;
    });

    it('foldConstants: outputs exactly equal', async function () {
      const { changed } = await sweep(foldConstantsPass, EXACT);
      expect(changed.length).to.be.greaterThan(100);
      this.test!.title += ` (${changed.length} of ${refs.length} changed)`;
    });

    it('foldBatchNorm: outputs within 1e-4 relative + 1e-5 absolute (conformance BNs follow graph inputs: none fold)', async function () {
      const { changed } = await sweep(foldBatchNormPass, BN_TOL);
      this.test!.title += ` (${changed.length} of ${refs.length} changed)`;
    });

    it('cleanup (all passes to a fixed point): outputs within 1e-4 relative + 1e-5 absolute', async function () {
      const { changed } = await sweep(cleanupPass, BN_TOL);
      expect(changed.length).to.be.greaterThan(100);
      this.test!.title += ` (${changed.length} of ${refs.length} changed)`;
    });

    it('folds the pytorch-converted BatchNorm*_eval models once a Conv (or ConvTranspose) is put in front of their BN', async function () {
      // these are opset 6, which onnxruntime has no BatchNormalization kernel for: moved to opset 9 (is_test dropped)
      const bnCases = cases.filter((c) => /^pytorch-converted\/test_BatchNorm.*_eval$/.test(c.id));
      expect(bnCases).to.have.length.greaterThanOrEqual(5);
      for (const [i, c] of bnCases.entries()) {
        const m = await loadModel(c.model);
        const feeds = caseFeeds(c.dataSets[0], m)!;
        m.opsetImports.set('', 9);
        const bn = m.graph.nodes.find((n) => n.opType === 'BatchNormalization')!;
        expect(bn.getInt('is_test'), c.id).to.equal(1);
        bn.attributes.delete('is_test');
        const x = bn.input(0);
        const ch = x.shape![1] as number;
        const k = x.shape!.length - 2;
        const op = i % 3 === 2 ? 'ConvTranspose' : 'Conv';
        const group = i % 2 === 1 ? ch : 1; // depthwise every other case
        const inputs = [x, floats(m.graph, 'prepended_W', [ch, ch / group, ...Array<number>(k).fill(i % 2 ? 3 : 1)], 300 + i)];
        if (i % 2 === 0) inputs.push(floats(m.graph, 'prepended_B', [ch], 400 + i));
        m.graph.inputs.push(...inputs.slice(1)); // IR version 3: initializers are listed as inputs too
        const conv = m.graph.addNode({ opType: op, name: 'prepended', inputs, before: bn, attributes: { group: attr.int(group), pads: attr.ints(Array<number>(2 * k).fill(i % 2)) } });
        bn.setInput(0, conv.output());
        const r = await checkPass(foldBatchNormPass, m, feeds, BN_TOL);
        expect(ops(r.model), c.id).to.deep.equal([op]);
        expect(r.model.graph.inputs.filter((v) => v.initializer).map((v) => v.name).sort(), c.id).to.deep.equal(i % 2 === 0 ? ['prepended_B', 'prepended_W'] : ['prepended_W', 'prepended_bias']);
        await saveForChecker(r.model, `conformance-bn-${i}`, r.after);
      }
      this.test!.title += ` (${bnCases.length} folded)`;
    });
  });

  describe('ONNX checker (python3-onnx)', function () {
    it('accepts the saved folded models', function () {
      expect(checkerFiles.length).to.be.greaterThanOrEqual(5);
      if (!hasPython('onnx')) this.skip();
      const r = runPython<{ ok: string[]; bad: string[] }>(
        `
import json, sys, onnx
ok, bad = [], []
for f in json.load(sys.stdin):
    try:
        onnx.checker.check_model(onnx.load(f), full_check=True)
        ok.append(f)
    except Exception as e:
        bad.append(f + ': ' + str(e).splitlines()[0])
print(json.dumps({"ok": ok, "bad": bad}))
`,
        checkerFiles,
      );
      expect(r.bad).to.deep.equal([]);
      expect(r.ok).to.have.length(checkerFiles.length);
    });
  });
});
