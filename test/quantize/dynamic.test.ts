/**
 * Dynamic (DynamicQuantizeLinear + MatMulInteger / ConvInteger) and weight-only (int8 DequantizeLinear, 4-bit
 * MatMulNBits / int4 DequantizeLinear) quantization. Every numeric check is against onnxruntime running the models
 * or against numpy, never against this code:
 *
 * - the Fashion-MNIST fixtures: the quantized models load in onnxruntime, top-1 on the 256-image slice stays within
 *   1 point of float, the MLP's file shrinks to ≤ 0.3×, the logits stay close; the model onnxruntime optimizes
 *   (written with `optimizedModelFilePath`) shows what it fused;
 * - a MatMul with K = 256 and seeded random weights, quantized to 4 bits: onnxruntime's output is within the error
 *   bound computed from the stored block scales, and equals numpy's product with the weights dequantized from the
 *   saved file;
 * - the ONNX checker (python3-onnx 1.12) on the int8 models; determinism; opset raising; option messages.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, OptionsError, PassError, Tensor, attr, encodeModel, loadModel, saveModel, type Dim, type Graph, type Value } from '../../src/index.js';
import { compareOutputs, evaluate } from '../../src/eval/accuracy.js';
import { loadDataset, type FileDataset } from '../../src/eval/datasets.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { decodeModelProto, modelFromProto } from '../../src/onnx/proto.js';
import { dynamicOptions, quantizeDynamic } from '../../src/quantize/dynamic.js';
import { matchesAny, opsetRaiseBlockers, quantizeBlockwise4, quantizeInt8, quantizeWeightOnly, weightOnlyOptions } from '../../src/quantize/weightOnly.js';
import { hasPython, runPython } from '../helpers/python.js';
import { mulberry32 } from '../../src/util/random.js';

// ---------------------------------------------------------------------------------------------------------------
// helpers

const tmp = mkdtempSync(join(tmpdir(), 'onnxpress-dynamic-'));

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const rng = mulberry32;

function input(g: Graph, name: string, shape: Dim[]): Value {
  const v = g.declareValue(name);
  v.type = { kind: 'tensor', elemType: 'float32', shape };
  g.inputs.push(v);
  return v;
}

function output(g: Graph, v: Value, shape: Dim[]): void {
  v.type = { kind: 'tensor', elemType: 'float32', shape };
  g.outputs.push(v);
}

/** y = x · W with x [batch, K], W [K, N] seeded; weights vary in size from block to block. */
function matmulModel(K: number, N: number, seed: number): { model: Model; w: Float32Array } {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 17);
  const g = m.graph;
  g.name = 'matmul';
  const x = input(g, 'x', ['batch', K]);
  const r = rng(seed);
  const w = Float32Array.from({ length: K * N }, (_, i) => (r() * 2 - 1) * (0.1 + Math.floor(i / N / 32) * 0.2));
  const wv = g.addInitializer('W', Tensor.from('float32', [K, N], w));
  output(g, g.addNode({ opType: 'MatMul', name: 'mm', inputs: [x, wv], outputs: ['y'] }).output(), ['batch', N]);
  return { model: m, w };
}

function floatsOf(t: RunTensor): Float32Array {
  return t.data as Float32Array;
}

async function run(
  model: Model | string,
  feeds: Record<string, RunTensor>,
  options: { optimized?: string; level?: 'disabled' | 'all' } = {},
): Promise<Record<string, RunTensor>> {
  const r = await Runner.create(model, { threads: 1, optimizedModelFilePath: options.optimized, graphOptimizationLevel: options.level ?? 'all' });
  try {
    return await r.run(feeds);
  } finally {
    await r.release();
  }
}

function opCounts(m: Model): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of m.graph.nodes) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}

/** What onnxruntime (level all) makes of a model: the op counts of the optimized model it writes. */
async function optimizedOps(m: Model, name: string, feeds: Record<string, RunTensor>): Promise<Record<string, number>> {
  const file = join(tmp, `${name}.optimized.onnx`);
  await run(m, feeds, { optimized: file });
  return opCounts(await loadModel(file));
}

async function savedSize(m: Model, name: string): Promise<number> {
  const file = join(tmp, `${name}.onnx`);
  await saveModel(m, file);
  return statSync(file).size;
}

interface Fixture {
  name: 'mlp' | 'cnn';
  file: string;
  model: Model;
  data: FileDataset;
  top1: number;
  feeds: Record<string, RunTensor>;
}

const fixtures: Partial<Record<'mlp' | 'cnn', Fixture>> = {};
async function fixture(name: 'mlp' | 'cnn'): Promise<Fixture> {
  if (!fixtures[name]) {
    const file = `fixtures/fmnist-${name}.onnx`;
    const model = await loadModel(file);
    const data = await loadDataset(`fixtures/fmnist-test-256/${name}.json`);
    const { top1 } = await evaluate(model, data, { threads: 1 });
    const b = data.batch(0, 4);
    const feed = Object.values(b.feeds)[0]!;
    fixtures[name] = { name, file, model, data, top1, feeds: { input: { dtype: 'float32', dims: feed.dims, data: feed.data as Float32Array } } };
  }
  return fixtures[name]!;
}

/** Top-1 within one point of float, and logits close to float's on all 256 images. */
async function expectClose(f: Fixture, q: Model, minSqnrDb: number): Promise<{ top1: number; sqnrDb: number }> {
  const { top1 } = await evaluate(q, f.data, { threads: 1 });
  expect(Math.abs(top1 - f.top1), `top-1 ${top1} vs float ${f.top1}`).to.be.at.most(0.01);
  const c = await compareOutputs(f.model, q, f.data, { threads: 1 });
  expect(c.sqnrDb, 'SQNR of the logits (dB)').to.be.greaterThan(minSqnrDb);
  expect(c.top1Agreement).to.be.at.least(0.97);
  return { top1, sqnrDb: c.sqnrDb };
}

/** Files for the ONNX checker at the end. */
const checkerFiles: string[] = [];

// ---------------------------------------------------------------------------------------------------------------

describe('quantize/dynamic and quantize/weightOnly', function () {
  this.timeout(120_000);
  after(() => rmSync(tmp, { recursive: true, force: true }));

  describe('quantizeDynamic', function () {
    it('MLP (Gemm, opset 17): DynamicQuantizeLinear + MatMulInteger + Cast + Mul + Add per Gemm, int8 weights, names kept', async function () {
      const f = await fixture('mlp');
      const { model: q, report } = quantizeDynamic(f.model);
      expect(opCounts(q)).to.deep.equal({ DynamicQuantizeLinear: 2, MatMulInteger: 2, Cast: 2, Mul: 4, Add: 2, Relu: 1 });
      for (const n of q.graph.nodes.filter((x) => x.opType === 'MatMulInteger')) {
        const w = n.input(1).initializer!;
        expect(w.dtype).to.equal('int8');
        expect(n.input(3).initializer!.toNumbers()).to.deep.equal([0]);
        expect(n.input(0).producer!.opType).to.equal('DynamicQuantizeLinear');
      }
      expect([...q.graph.initializers.keys()]).to.not.include.members(['net.0.weight', 'net.2.weight']);
      expect(q.graph.outputs.map((o) => o.name)).to.deep.equal(['logits']);
      expect(q.graph.initializers.get('net.0.weight_quantized')!.initializer!.dims).to.deep.equal([784, 128]); // transB=1 -> [K, N]
      expect(report.mode).to.equal('dynamic');
      expect(report.quantizedByOp).to.deep.equal({ Gemm: 2 });
      expect(report.nodes.every((n) => n.quantized)).to.equal(true);
    });

    it('MLP: loads in onnxruntime, top-1 within 1 point of float, file ≤ 0.3×, logits close', async function () {
      const f = await fixture('mlp');
      const { model: q } = quantizeDynamic(f.model);
      const { top1, sqnrDb } = await expectClose(f, q, 40);
      const ratio = (await savedSize(q, 'mlp-dynamic')) / statSync(f.file).size;
      expect(ratio).to.be.at.most(0.3);
      checkerFiles.push(join(tmp, 'mlp-dynamic.onnx'));
      this.test!.title += ` (top-1 ${f.top1} -> ${top1}, ${sqnrDb.toFixed(1)} dB, size ×${ratio.toFixed(3)})`;
    });

    it('MLP: onnxruntime (level all) fuses each DynamicQuantizeLinear + MatMulInteger + Cast + Mul + Add into DynamicQuantizeMatMul', async function () {
      const f = await fixture('mlp');
      for (const options of [{}, { perChannel: true, weightType: 'uint8' as const }]) {
        const ops = await optimizedOps(quantizeDynamic(f.model, options).model, 'mlp-dynamic', f.feeds);
        expect(ops, JSON.stringify(options)).to.deep.equal({ DynamicQuantizeMatMul: 2, Relu: 1 });
      }
    });

    it('per-channel variants stay close to float (uint8 weights; int8 with reduceRange)', async function () {
      const f = await fixture('mlp');
      // full-range int8 per-channel saturates onnxruntime's u8s8 int16 kernels on x86 without VNNI: not checked here
      for (const options of [{ perChannel: true, weightType: 'uint8' as const }, { perChannel: true, reduceRange: true }]) {
        const { model: q } = quantizeDynamic(f.model, options);
        const w = q.graph.nodes.find((n) => n.opType === 'MatMulInteger')!.input(1).initializer!;
        if (options.reduceRange) expect(Math.max(...w.toNumbers().map(Math.abs))).to.equal(63);
        const scale = q.graph.initializers.get('net.0.weight_scale')!.initializer!;
        expect(scale.dims).to.deep.equal([128]);
        await expectClose(f, q, 35);
      }
    });

    it('CNN with Conv opted in: ConvInteger with int8 weights runs; accuracy within 1 point; onnxruntime keeps ConvInteger and fuses the Gemms', async function () {
      const f = await fixture('cnn');
      const { model: q, report } = quantizeDynamic(f.model, { opTypes: ['Conv', 'Gemm'] });
      expect(report.quantizedByOp).to.deep.equal({ Conv: 2, Gemm: 2 });
      const conv = q.graph.nodes.filter((n) => n.opType === 'ConvInteger');
      expect(conv).to.have.length(2);
      expect(conv[0]!.input(1).initializer!.dtype).to.equal('int8');
      expect(conv[0]!.getInts('pads')).to.deep.equal([1, 1, 1, 1]);
      const biasAdd = q.graph.nodes.find((n) => n.opType === 'Add' && n.inputs[0]?.producer?.inputs[0]?.producer?.opType === 'Cast')!;
      expect(biasAdd.input(1).initializer!.dims).to.deep.equal([16, 1, 1]);
      const { top1 } = await expectClose(f, q, 35);
      await savedSize(q, 'cnn-dynamic');
      checkerFiles.push(join(tmp, 'cnn-dynamic.onnx'));
      const ops = await optimizedOps(q, 'cnn-dynamic', f.feeds);
      expect(ops.ConvInteger).to.equal(2);
      expect(ops.DynamicQuantizeMatMul).to.equal(2);
      expect(ops.MatMulInteger ?? 0).to.equal(0);
      this.test!.title += ` (top-1 ${f.top1} -> ${top1})`;
    });

    it('CNN by default leaves Conv in float and says why', async function () {
      const f = await fixture('cnn');
      const { report } = quantizeDynamic(f.model);
      const convs = report.nodes.filter((n) => n.opType === 'Conv');
      expect(convs).to.have.length(2);
      for (const c of convs) expect(c).to.include({ quantized: false, reason: 'excluded', detail: 'Conv is not in opTypes (Gemm, MatMul)' });
    });

    it('exclude patterns leave nodes in float; the input model is untouched; two runs give the same bytes', async function () {
      const f = await fixture('mlp');
      const before = encodeModel(f.model);
      const a = quantizeDynamic(f.model, { exclude: ['/net/net.2/*'] });
      expect(a.report.nodes.find((n) => n.node === '/net/net.2/Gemm')).to.include({ quantized: false, reason: 'excluded' });
      expect(opCounts(a.model).Gemm).to.equal(1);
      expect(Buffer.from(encodeModel(f.model)).equals(Buffer.from(before))).to.equal(true);
      const b = quantizeDynamic(f.model, { exclude: ['/net/net.2/*'] });
      expect(Buffer.from(encodeModel(a.model)).equals(Buffer.from(encodeModel(b.model)))).to.equal(true);
      expect(matchesAny('/net/net.2/Gemm', ['/net/net.?/Gemm'])).to.equal(true);
      expect(matchesAny('/net/net.2/Gemm', ['/net/net.2'])).to.equal(false);
    });

    it('Gemm with alpha, beta, transB = 0 and MatMul: outputs match the float model', async function () {
      const m = new Model();
      m.irVersion = 8;
      m.opsetImports.set('', 13);
      const g = m.graph;
      const r = rng(7);
      const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
      const x = input(g, 'x', ['batch', 32]);
      const w1 = g.addInitializer('w1', Tensor.from('float32', [32, 24], rand(32 * 24)));
      const c1 = g.addInitializer('c1', Tensor.from('float32', [24], rand(24)));
      const h = g.addNode({ opType: 'Gemm', name: 'g1', inputs: [x, w1, c1], outputs: ['h'], attributes: { alpha: attr.float(0.5), beta: attr.float(2) } }).output();
      const w2 = g.addInitializer('w2', Tensor.from('float32', [24, 8], rand(24 * 8)));
      output(g, g.addNode({ opType: 'MatMul', name: 'm2', inputs: [h, w2], outputs: ['y'] }).output(), ['batch', 8]);
      const feeds = { x: { dtype: 'float32' as const, dims: [4, 32], data: rand(4 * 32) } };
      const want = floatsOf((await run(m, feeds)).y!);
      // reduceRange: full-range int8 weights saturate onnxruntime's u8s8 kernels on x86 CPUs without VNNI
      const { model: q } = quantizeDynamic(m, { reduceRange: true });
      const got = floatsOf((await run(q, feeds)).y!);
      const scale = Math.max(...want.map(Math.abs));
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `y[${i}]`).to.be.below(0.03 * scale);
      expect(opCounts(q)).to.deep.equal({ DynamicQuantizeLinear: 2, MatMulInteger: 2, Cast: 2, Mul: 4, Add: 1 });
    });

    it('raises opset 10 to 11 for DynamicQuantizeLinear when safe, and refuses with the ops in the way when not', function () {
      const make = (withSoftmax: boolean): Model => {
        const { model } = matmulModel(32, 4, 1);
        model.opsetImports.set('', 10);
        if (withSoftmax) {
          const y = model.graph.outputs[0]!;
          const s = model.graph.addNode({ opType: 'Softmax', name: 'sm', inputs: [y], outputs: ['p'] }).output();
          model.graph.outputs[0] = s;
          s.type = y.type;
        }
        return model;
      };
      const ok = quantizeDynamic(make(false));
      expect(ok.model.opset()).to.equal(11);
      expect(ok.report.notes[0]).to.equal('raised the default-domain opset from 10 to 11 (every op in the model means the same there)');
      // Softmax changed at 13, not at 11: raising to 11 is safe for it, so a MatMul + Softmax model is raised too
      expect(quantizeDynamic(make(true)).model.opset()).to.equal(11);
      const loop = matmulModel(32, 4, 1).model;
      loop.opsetImports.set('', 10);
      const y = loop.graph.outputs[0]!;
      // an op whose history the table does not hold (never run: the raise is refused first)
      const up = loop.graph.addNode({ opType: 'MaxUnpool', name: 'up', inputs: [y], outputs: ['u'], attributes: { kernel_shape: attr.ints([1]) } }).output();
      up.type = y.type;
      loop.graph.outputs[0] = up;
      expect(() => quantizeDynamic(loop)).to.throw(
        PassError,
        "quantize.dynamic needs DynamicQuantizeLinear (opset 11), but the model's opset is 10, and raising it to 11 could change MaxUnpool (its changes between opsets are not tabulated here)",
      );
    });
  });

  describe('quantizeWeightOnly, 8 bits', function () {
    it('MLP and CNN: per-channel int8 DequantizeLinear weights; load in onnxruntime; top-1 within 1 point; MLP ≤ 0.3×', async function () {
      const notes: string[] = [];
      for (const name of ['mlp', 'cnn'] as const) {
        const f = await fixture(name);
        const { model: q, report } = quantizeWeightOnly(f.model);
        const dqs = q.graph.nodes.filter((n) => n.opType === 'DequantizeLinear');
        expect(dqs).to.have.length(name === 'mlp' ? 2 : 4);
        for (const dq of dqs) {
          expect(dq.input(0).initializer!.dtype).to.equal('int8');
          expect(dq.getInt('axis')).to.equal(0); // Conv, and Gemm with transB = 1
          expect(dq.output().consumers[0]!.inputs[1]).to.equal(dq.output());
        }
        // biases stay float
        const gemm = q.graph.nodes.find((n) => n.opType === 'Gemm')!;
        expect(gemm.input(2).initializer!.dtype).to.equal('float32');
        expect(report.nodes.every((n) => n.quantized)).to.equal(true);
        const { top1, sqnrDb } = await expectClose(f, q, 35);
        const ratio = (await savedSize(q, `${name}-weight-only-8`)) / statSync(f.file).size;
        if (name === 'mlp') expect(ratio).to.be.at.most(0.3);
        checkerFiles.push(join(tmp, `${name}-weight-only-8.onnx`));
        notes.push(`${name}: top-1 ${f.top1} -> ${top1}, ${sqnrDb.toFixed(1)} dB, size ×${ratio.toFixed(3)}`);
      }
      this.test!.title += ` (${notes.join('; ')})`;
    });

    it('dequantized weights are within s/2 of the float weights (checked in onnxruntime)', async function () {
      const { model } = matmulModel(64, 16, 3);
      const { model: q } = quantizeWeightOnly(model);
      const dq = q.graph.nodes.find((n) => n.opType === 'DequantizeLinear')!;
      expect(dq.getInt('axis')).to.equal(1); // MatMul: the last axis
      q.graph.outputs.push(dq.output());
      const out = await run(q, { x: { dtype: 'float32', dims: [1, 64], data: new Float32Array(64) } });
      const wq = floatsOf(out[dq.output().name]!);
      const s = dq.input(1).initializer!.data<Float32Array>();
      const w = model.graph.initializers.get('W')!.initializer!.data<Float32Array>();
      for (let i = 0; i < w.length; i++) expect(Math.abs(wq[i]! - w[i]!), `W[${i}]`).to.be.at.most(s[i % 16]! / 2 + 1e-7);
    });

    it('raises opset 11 to 13 for per-axis DequantizeLinear when safe; stays per-tensor with a note when not', async function () {
      // the blocker: Resize, whose coordinate handling changed at 13 and which no rewrite here carries over
      const make = (resize: boolean, softmax = false) => {
        const m = new Model();
        m.irVersion = 6;
        m.opsetImports.set('', 11);
        const g = m.graph;
        const r = rng(5);
        const x = input(g, 'x', ['batch', 2, 6, 6]);
        const w = g.addInitializer('w', Tensor.from('float32', [4, 2, 3, 3], Float32Array.from({ length: 72 }, () => r() - 0.5)));
        const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, w], outputs: ['c'], attributes: { kernel_shape: attr.ints([3, 3]) } }).output();
        let relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [c], outputs: ['r'] }).output();
        if (resize) {
          const roi = g.addInitializer('roi', Tensor.from('float32', [0], []));
          const scales = g.addInitializer('scales', Tensor.from('float32', [4], [1, 1, 1, 1]));
          relu = g.addNode({ opType: 'Resize', name: 'resize', inputs: [relu, roi, scales], outputs: ['rs'], attributes: { mode: attr.string('nearest') } }).output();
        }
        const flat = g.addNode({ opType: 'Flatten', name: 'flat', inputs: [relu], outputs: ['f'] }).output();
        let y = flat;
        if (softmax) y = g.addNode({ opType: 'Softmax', name: 'sm', inputs: [flat], outputs: ['p'] }).output();
        output(g, y, ['batch', 64]);
        return m;
      };
      const feeds = { x: { dtype: 'float32' as const, dims: [2, 2, 6, 6], data: Float32Array.from({ length: 144 }, (_, i) => Math.sin(i)) } };
      const safe = quantizeWeightOnly(make(false));
      expect(safe.model.opset()).to.equal(13);
      expect(safe.model.irVersion).to.equal(7);
      expect(safe.model.graph.nodes.find((n) => n.opType === 'DequantizeLinear')!.getInt('axis')).to.equal(0);
      const blocked = quantizeWeightOnly(make(true));
      expect(blocked.model.opset()).to.equal(11);
      const dq = blocked.model.graph.nodes.find((n) => n.opType === 'DequantizeLinear')!;
      expect(dq.getAttr('axis')).to.equal(undefined);
      expect(dq.input(1).initializer!.dims).to.deep.equal([]);
      expect(blocked.report.notes).to.deep.equal([
        "weights are per-tensor, not per-channel: a per-axis DequantizeLinear needs opset 13, and the model's opset is 11, and raising it to 13 could change Resize (changed at opset 13)",
      ]);
      // Softmax changed meaning at 13 too, but its old meaning can be written at 13: it is rewritten, not a blocker
      const sm = quantizeWeightOnly(make(false, true));
      expect(sm.model.opset()).to.equal(13);
      expect(sm.model.graph.nodes.find((n) => n.opType === 'Softmax')!.getInt('axis')).to.equal(-1);
      expect(sm.report.notes.join('\n')).to.match(/raised the default-domain opset from 11 to 13 \(rewrote Softmax ×1 to mean the same there\)/);
      for (const [m, q] of [[make(false), safe.model], [make(true), blocked.model], [make(false, true), sm.model]] as const) {
        const want = floatsOf(Object.values(await run(m, feeds))[0]!);
        const got = floatsOf(Object.values(await run(q, feeds))[0]!);
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).to.be.below(0.02);
      }
      expect(opsetRaiseBlockers(make(true), 13)).to.deep.equal(['Resize (changed at opset 13)']);
      expect(opsetRaiseBlockers(make(false, true), 13)).to.deep.equal([]);
    });
  });

  describe('quantizeWeightOnly, 4 bits', function () {
    const K = 256;
    const N = 48;
    const M = 6;
    const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37) * 2);
    const feeds = { x: { dtype: 'float32' as const, dims: [M, K], data: x } };

    /**
     * Checks onnxruntime's output against float and numpy. Without graph optimizations the only error is the
     * weights': |y − y_float| ≤ Σ_k |x_k|·s(n, block(k))/2 (s from the stored scales), and y equals numpy's product
     * with the weights dequantized from the saved file. At level `all` onnxruntime may run MatMulNBits with
     * accuracy_level 4 (it does for a fused DequantizeLinear + MatMul): A is then quantized to int8 per block of K
     * (error ≤ max|x_block|/254 each), which adds Σ_k (|w_kn| + s/2)·max|x_block|/254.
     */
    async function check4(q: Model, name: string, w: Float32Array, yFloat: Float32Array, scaleAt: (n: number, b: number) => number): Promise<string> {
      const file = join(tmp, `${name}.onnx`);
      await saveModel(q, file);
      const y = floatsOf((await run(file, feeds, { level: 'disabled' })).y!);
      const yAll = floatsOf((await run(file, feeds, { level: 'all' })).y!);
      let worst = 0;
      let worstAll = 0;
      let anyError = false;
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let bound = 0;
          let actBound = 0;
          let mag = 0;
          for (let k = 0; k < K; k++) {
            const b = Math.floor(k / 32);
            let amax = 0;
            for (let j = b * 32; j < Math.min(K, b * 32 + 32); j++) amax = Math.max(amax, Math.abs(x[m * K + j]!));
            bound += (Math.abs(x[m * K + k]!) * scaleAt(n, b)) / 2;
            actBound += ((Math.abs(w[k * N + n]!) + scaleAt(n, b) / 2) * amax) / 254;
            mag += Math.abs(x[m * K + k]! * w[k * N + n]!);
          }
          const i = m * N + n;
          const err = Math.abs(y[i]! - yFloat[i]!);
          if (err > 1e-6) anyError = true;
          expect(err, `y[${m}, ${n}]`).to.be.at.most(bound + 1e-5 * mag + 1e-6);
          expect(Math.abs(yAll[i]! - yFloat[i]!), `level all: y[${m}, ${n}]`).to.be.at.most(bound + actBound + 1e-5 * mag + 1e-6);
          worst = Math.max(worst, err / bound);
          worstAll = Math.max(worstAll, Math.abs(yAll[i]! - yFloat[i]!) / (bound + actBound));
        }
      }
      expect(anyError, 'the 4-bit output differs from float at all').to.equal(true);
      const summary = `error ≤ ${worst.toFixed(2)} of the bound, ${worstAll.toFixed(2)} at level all`;
      if (!hasPython('numpy') || !hasPython('onnx')) return `${summary}; numpy check skipped`;
      const ref = runPython<{ y: number[]; maxErrOverHalfScale: number }>(NUMPY_REFERENCE, { model: file, x: Array.from(x), w: Array.from(w) });
      for (let i = 0; i < ref.y.length; i++) expect(Math.abs(y[i]! - ref.y[i]!), `numpy y[${i}]`).to.be.at.most(1e-4 + 1e-5 * Math.abs(ref.y[i]!));
      expect(ref.maxErrOverHalfScale, 'max |W - dq(W)| / (s/2), by numpy').to.be.at.most(1 + 1e-5);
      return summary;
    }

    it('MatMulNBits (K = 256, block 32, symmetric): within the 4-bit bound of float, equal to numpy on the saved weights', async function () {
      const { model, w } = matmulModel(K, N, 11);
      const yFloat = floatsOf((await run(model, feeds)).y!);
      const { model: q, report } = quantizeWeightOnly(model, { bits: 4 });
      const nb = q.graph.nodes.find((n) => n.opType === 'MatMulNBits')!;
      expect(nb.domain).to.equal('com.microsoft');
      expect(q.opset('com.microsoft')).to.equal(1);
      expect(Object.fromEntries([...nb.attributes].map(([k, a]) => [k, a.value]))).to.deep.equal({ K: 256, N: 48, bits: 4, block_size: 32, accuracy_level: 0 });
      expect(nb.input(1).initializer!.dims).to.deep.equal([48, 8, 16]);
      expect(nb.input(2).initializer!.dims).to.deep.equal([48 * 8]);
      expect(nb.inputs).to.have.length(3);
      expect(report.nodes[0]).to.include({ quantized: true, detail: 'com.microsoft.MatMulNBits, 4-bit block 32 along K = 256, symmetric' });
      const s = nb.input(2).initializer!.data<Float32Array>();
      this.test!.title += ` (${await check4(q, 'q4-nbits', w, yFloat, (n, b) => s[n * 8 + b]!)})`;
    });

    it('MatMulNBits asymmetric, with packed uint4 zero points', async function () {
      const { model, w } = matmulModel(K, N, 12);
      const yFloat = floatsOf((await run(model, feeds)).y!);
      const { model: q } = quantizeWeightOnly(model, { bits: 4, symmetric: false });
      const nb = q.graph.nodes.find((n) => n.opType === 'MatMulNBits')!;
      expect(nb.input(3).initializer!.dims).to.deep.equal([48 * 4]);
      const s = nb.input(2).initializer!.data<Float32Array>();
      this.test!.title += ` (${await check4(q, 'q4-nbits-asym', w, yFloat, (n, b) => s[n * 8 + b]!)})`;
    });

    it('ONNX int4 DequantizeLinear (opset 21, block_size 32): within the bound, equal to numpy; onnxruntime runs it', async function () {
      const { model, w } = matmulModel(K, N, 13);
      const yFloat = floatsOf((await run(model, feeds)).y!);
      const { model: q, report } = quantizeWeightOnly(model, { bits: 4, format: 'DequantizeLinear' });
      expect(q.opset()).to.equal(21);
      expect(q.irVersion).to.equal(10);
      const dq = q.graph.nodes.find((n) => n.opType === 'DequantizeLinear')!;
      expect(dq.input(0).initializer!.dtype).to.equal('int4');
      expect(dq.input(1).initializer!.dims).to.deep.equal([8, 48]);
      expect([dq.getInt('axis'), dq.getInt('block_size')]).to.deep.equal([0, 32]);
      expect(report.notes).to.deep.equal(['raised the default-domain opset from 17 to 21 (every op in the model means the same there)']);
      const s = dq.input(1).initializer!.data<Float32Array>();
      const file = join(tmp, 'q4-dq.optimized.onnx');
      await run(q, feeds, { optimized: file });
      const fused = (await loadModel(file)).graph.nodes.map((n) => `${n.opType}${n.opType === 'MatMulNBits' ? ` (accuracy_level ${n.getInt('accuracy_level')})` : ''}`);
      this.test!.title += ` (${await check4(q, 'q4-dq', w, yFloat, (n, b) => s[b * 48 + n]!)}; onnxruntime at level all runs ${fused.join(' + ')})`;
    });

    it('K not a multiple of the block size (K = 200, block 64) pads the last block', async function () {
      const { model } = matmulModel(200, 8, 2);
      const f = { x: { dtype: 'float32' as const, dims: [2, 200], data: Float32Array.from({ length: 400 }, (_, i) => Math.cos(i)) } };
      const want = floatsOf((await run(model, f)).y!);
      for (const format of ['MatMulNBits', 'DequantizeLinear'] as const) {
        const { model: q } = quantizeWeightOnly(model, { bits: 4, blockSize: 64, format });
        const got = floatsOf((await run(q, f)).y!);
        const scale = Math.max(...want.map(Math.abs));
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${format} y[${i}]`).to.be.below(0.1 * scale);
      }
    });

    it('MLP and CNN Gemms as MatMulNBits: top-1 within 1 point of float', async function () {
      const notes: string[] = [];
      for (const name of ['mlp', 'cnn'] as const) {
        const f = await fixture(name);
        const { model: q, report } = quantizeWeightOnly(f.model, { bits: 4 });
        expect(report.quantizedByOp).to.deep.equal({ Gemm: 2 });
        const { top1, sqnrDb } = await expectClose(f, q, 20);
        const ratio = (await savedSize(q, `${name}-q4`)) / statSync(f.file).size;
        notes.push(`${name}: top-1 ${f.top1} -> ${top1}, ${sqnrDb.toFixed(1)} dB, size ×${ratio.toFixed(3)}`);
      }
      this.test!.title += ` (${notes.join('; ')})`;
    });

    it('the ONNX form refuses a model whose opset cannot be raised to 21, naming the ops', async function () {
      const f = await fixture('cnn');
      // a ReduceMean on the logits: its axes became an input at 18, which no rewrite here carries over
      const m = modelFromProto(decodeModelProto(encodeModel(f.model)));
      const mean = m.graph.addNode({ opType: 'ReduceMean', name: 'mean', inputs: [m.graph.outputs[0]!], outputs: ['mean'], attributes: { axes: attr.ints([1]) } }).output();
      mean.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 1] };
      m.graph.outputs.push(mean);
      expect(() => quantizeWeightOnly(m, { bits: 4, format: 'DequantizeLinear' })).to.throw(
        PassError,
        "quantize.weightOnly (bits: 4, format: DequantizeLinear) needs a blockwise int4 DequantizeLinear (opset 21), but the model's opset is 13, and raising it to 21 could change ReduceMean (changed at opset 18); use format: 'MatMulNBits' for onnxruntime",
      );
      // without it, the CNN is raised (its BatchNormalization only gained training outputs at 14) and runs
      const { model: q, report } = quantizeWeightOnly(f.model, { bits: 4, format: 'DequantizeLinear' });
      expect(q.opset()).to.equal(21);
      expect(report.notes.join('\n')).to.match(/raised the default-domain opset from 13 to 21/);
      const out = await run(q, f.feeds);
      expect(Object.keys(out)).to.have.length(1);
    });
  });

  describe('weight math', function () {
    it('int8: symmetric, |w − dq(q(w))| ≤ s/2, zero exact, per channel', function () {
      const w = new Float32Array([1, -2, 0.5, 4, 0, 0, 0, 0]);
      const q = quantizeInt8(w, [4, 2], 0, { name: 'w' });
      expect(Array.from(q.scales)).to.deep.equal([Math.fround(2 / 127), Math.fround(4 / 127), 1, 1]);
      expect(Array.from(q.data)).to.deep.equal([64, -127, 16, 127, 0, 0, 0, 0]);
      const u = quantizeInt8(w, [4, 2], undefined, { name: 'w', unsigned: true });
      expect(u.zeroPoint).to.equal(128);
      expect(Array.from(u.data).slice(0, 4)).to.deep.equal([160, 64, 144, 255]);
      expect(() => quantizeInt8(new Float32Array([NaN]), [1], undefined, { name: 'bad' })).to.throw(PassError, 'Weight "bad" holds NaN at element 0: only finite weights can be quantized');
    });

    it('4-bit blocks: codes 1..15 around 8 when symmetric, padding holds the zero point', function () {
      const q = quantizeBlockwise4(new Float32Array([7, -7, 2.5, 0]), 1, 4, 16, true);
      expect(Array.from(q.scales)).to.deep.equal([1]);
      expect(Array.from(q.codes.slice(0, 6))).to.deep.equal([15, 1, 10, 8, 8, 8]); // 2.5 rounds to even (2)
      const a = quantizeBlockwise4(new Float32Array([1.5, 0, 0, 0]), 1, 4, 16, false);
      expect(a.zeroPoints[0]).to.equal(0);
      expect(a.codes[0]).to.equal(15);
    });
  });

  describe('options', function () {
    it('declares each option once, with a description', function () {
      for (const [k, v] of Object.entries(dynamicOptions.shape)) expect(v.description, k).to.be.a('string');
      expect(Object.keys(dynamicOptions.shape)).to.deep.equal(['perChannel', 'weightType', 'opTypes', 'exclude', 'reduceRange']);
      expect(dynamicOptions.parse({})).to.deep.equal({ perChannel: false, weightType: 'int8', opTypes: ['Gemm', 'MatMul'], exclude: [], reduceRange: false });
    });

    it('invalid options give OptionsErrors that name the field', async function () {
      const f = await fixture('mlp');
      const cases: [() => unknown, string][] = [
        [() => quantizeDynamic(f.model, { weightType: 'int4' as never }), 'Invalid options for quantize.dynamic: weightType: Invalid option: expected one of "int8"|"uint8"'],
        [() => quantizeDynamic(f.model, { opTypes: ['Relu' as never] }), 'Invalid options for quantize.dynamic: opTypes.0: Invalid option: expected one of "Conv"|"Gemm"|"MatMul"'],
        [() => quantizeDynamic(f.model, { opTypes: [] }), 'Invalid options for quantize.dynamic: opTypes: Too small: expected array to have >=1 items'],
        [() => quantizeWeightOnly(f.model, { bits: 3 as never }), 'Invalid options for quantize.weightOnly: bits: Invalid option: expected one of 8|4'],
        [() => quantizeWeightOnly(f.model, { bits: 4, blockSize: 48 }), 'Invalid options for quantize.weightOnly: blockSize: Expected a power of 2 (16, 32, 64, …)'],
        [() => quantizeWeightOnly(f.model, { bits: 4, blockSize: 8 }), 'Invalid options for quantize.weightOnly: blockSize: Too small: expected number to be >=16'],
        [() => quantizeWeightOnly(f.model, { bits: 4, opTypes: ['Conv'] }), 'Invalid options for quantize.weightOnly: opTypes: Conv weights are quantized to 8 bits only; remove "Conv" or use bits: 8'],
        [() => quantizeWeightOnly(f.model, { accuracyLevel: 5 }), 'Invalid options for quantize.weightOnly: accuracyLevel: Too big: expected number to be <=4'],
      ];
      for (const [fn, message] of cases) {
        expect(fn).to.throw(OptionsError);
        try {
          fn();
        } catch (e) {
          expect((e as Error).message).to.equal(message);
        }
      }
    });
  });

  describe('ONNX checker (python3-onnx 1.12)', function () {
    it('accepts the int8 dynamic and weight-only models', function () {
      expect(checkerFiles.length).to.equal(4);
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

    // onnx 1.12 knows opsets up to 17: neither DequantizeLinear-21 (block_size, int4) nor com.microsoft.MatMulNBits
    it('4-bit models: not checked (onnx 1.12 knows neither opset 21 nor com.microsoft ops)');
  });
});

/** numpy: dequantizes the 4-bit weights stored in the saved model, then y = x · W in float64. */
const NUMPY_REFERENCE = `
import json, sys
import numpy as np, onnx
from onnx import helper
inp = json.load(sys.stdin)
m = onnx.load(inp['model'])
inits = {t.name: t for t in m.graph.initializer}
def u8(name):
    return np.frombuffer(inits[name].raw_data, dtype=np.uint8)
def f32(name):
    t = inits[name]
    return np.frombuffer(t.raw_data, dtype='<f4').astype(np.float64) if t.raw_data else np.array(t.float_data, dtype=np.float64)
def nibbles(b, count, signed):
    v = np.stack([b & 0x0F, b >> 4], axis=-1).reshape(-1)[:count].astype(np.int64)
    return np.where(v >= 8, v - 16, v) if signed else v
node = [n for n in m.graph.node if n.op_type in ('MatMulNBits', 'DequantizeLinear')][0]
at = {a.name: helper.get_attribute_value(a) for a in node.attribute}
if node.op_type == 'MatMulNBits':
    K, N, bs = at['K'], at['N'], at['block_size']
    nb = (K + bs - 1) // bs
    codes = nibbles(u8(node.input[1]), N * nb * bs, False).reshape(N, nb, bs)
    scales = f32(node.input[2]).reshape(N, nb)
    if len(node.input) > 3 and node.input[3]:
        per_row = (nb + 1) // 2
        zp = nibbles(u8(node.input[3]), N * per_row * 2, False).reshape(N, per_row * 2)[:, :nb]
    else:
        zp = np.full((N, nb), 8)
    W = ((codes - zp[:, :, None]) * scales[:, :, None]).reshape(N, nb * bs)[:, :K].T
    half = np.repeat(scales, bs, axis=1)[:, :K].T / 2
else:
    q = inits[node.input[0]]
    K, N = list(q.dims)
    bs, axis = at['block_size'], at['axis']
    assert axis == 0
    vals = nibbles(np.frombuffer(q.raw_data, dtype=np.uint8), K * N, q.data_type == 22).reshape(K, N)
    scales = f32(node.input[1]).reshape(-1, N)
    zp = nibbles(u8(node.input[2]), scales.size, False).reshape(-1, N) if len(node.input) > 2 and node.input[2] else np.zeros_like(scales)
    W = (vals - np.repeat(zp, bs, axis=0)[:K]) * np.repeat(scales, bs, axis=0)[:K]
    half = np.repeat(scales, bs, axis=0)[:K] / 2
x = np.array(inp['x'], dtype=np.float64).reshape(-1, K)
w = np.array(inp['w'], dtype=np.float64).reshape(K, N)
y = x @ W
print(json.dumps({'y': y.reshape(-1).tolist(), 'maxErrOverHalfScale': float(np.max(np.abs(w - W) / half))}))
`;
