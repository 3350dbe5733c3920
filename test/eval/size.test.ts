import { expect } from 'chai';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syntheticFeeds } from '../../src/eval/feeds.js';
import { sizeMetricsSchema } from '../../src/eval/schema.js';
import { countMacs, measureSize } from '../../src/eval/size.js';
import { attr, Model } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { toSparseStorage } from '../../src/prune/storage.js';
import { quantize } from '../../src/quantize/quantize.js';
import { hasPython, runPython } from '../helpers/python.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = ['cnn', 'mlp', 'resnet8', 'mobilenet', 'teacher', 'student'].map((n) => join(ROOT, `fixtures/fmnist-${n}.onnx`));
const CNN = FIXTURES[0]!;

/**
 * The reference: python3-onnx's own shape inference (batch set to 1) and the textbook formulas — Conv: output
 * elements × weight elements per output channel; Gemm: M·N·K; MatMul: output elements × K — with parameters as
 * the elements of float initializers and Constant tensors, and their exact zeros.
 */
const ONNX_REFERENCE = String.raw`
import json, sys, onnx, numpy as np
from onnx import numpy_helper, shape_inference
out = {}
for path in json.load(sys.stdin):
    m = onnx.load(path)
    for i in m.graph.input:
        d = i.type.tensor_type.shape.dim
        if len(d) and not d[0].HasField('dim_value'): d[0].dim_value = 1
    m = shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [x.dim_value for x in vi.type.tensor_type.shape.dim]
    params = zeros = 0
    tensors = [(t.name, numpy_helper.to_array(t)) for t in m.graph.initializer]
    tensors += [(n.output[0], numpy_helper.to_array(n.attribute[0].t)) for n in m.graph.node if n.op_type == 'Constant']
    for name, a in tensors:
        shapes[name] = list(a.shape)
        if a.dtype.kind == 'f': params += a.size; zeros += int((a == 0).sum())
    macs = {}
    for n in m.graph.node:
        at = {x.name: x.i for x in n.attribute}
        if n.op_type == 'Conv':
            v = int(np.prod(shapes[n.output[0]])) * int(np.prod(shapes[n.input[1]][1:]))
        elif n.op_type == 'Gemm':
            a, b = shapes[n.input[0]], shapes[n.input[1]]
            v = (a[1] if at.get('transA') else a[0]) * (a[0] if at.get('transA') else a[1]) * (b[0] if at.get('transB') else b[1])
        elif n.op_type == 'MatMul':
            v = int(np.prod(shapes[n.output[0]])) * shapes[n.input[0]][-1]
        else:
            continue
        macs[n.op_type] = macs.get(n.op_type, 0) + v
    out[path] = {'parameters': params, 'zeros': zeros, 'macsByOp': macs}
print(json.dumps(out))
`;

/** The reference from PyTorch: the fixtures' architectures (fixtures/reference.json), MACs counted by forward hooks. */
const TORCH_REFERENCE = String.raw`
import json, torch
from torch import nn
cnn = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(1568, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 10))
mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
def count(model, x):
    macs = {}
    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs['Conv'] = macs.get('Conv', 0) + out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs['Gemm'] = macs.get('Gemm', 0) + out.numel() * m.in_features
    for m in model.modules(): m.register_forward_hook(hook)
    with torch.no_grad(): model.eval()(x)
    stats = sum(b.numel() for n, b in model.named_buffers() if 'running' in n)
    return {'macsByOp': macs, 'parameters': sum(p.numel() for p in model.parameters()) + stats}
print(json.dumps({'cnn': count(cnn, torch.zeros(1, 1, 28, 28)), 'mlp': count(mlp, torch.zeros(1, 784))}))
`;

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** A copy of the CNN with its first Gemm weight (1568×64) all zeros. */
async function cnnWithZeroedGemm(): Promise<{ model: Model; zeroed: number }> {
  const model = await loadModel(CNN);
  const gemm = model.graph.nodes.find((n) => n.opType === 'Gemm')!;
  const w = gemm.input(1);
  const t = w.initializer!;
  w.initializer = Tensor.from('float32', t.dims, new Float32Array(t.size));
  return { model, zeroed: t.size };
}

describe('eval/size', function () {
  this.timeout(60_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-size-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('against python3-onnx', () => {
    let ref: Record<string, { parameters: number; zeros: number; macsByOp: Record<string, number> }>;
    before(function () {
      if (!hasPython('onnx')) this.skip();
      ref = runPython(ONNX_REFERENCE, FIXTURES);
    });

    for (const [i, name] of ['cnn', 'mlp', 'resnet8', 'mobilenet', 'teacher', 'student'].entries()) {
      it(`fmnist-${name}: bytes, parameters, zero share and MACs`, async () => {
        const path = FIXTURES[i]!;
        const s = sizeMetricsSchema.parse(await measureSize(await loadModel(path), { path }));
        const r = ref[path]!;
        expect(s.bytes).to.equal(statSync(path).size);
        expect(s.gzipBytes).to.be.greaterThan(0).and.lessThan(s.bytes);
        expect(s.parameters).to.equal(r.parameters);
        expect(s.zeroShare).to.equal(r.zeros / r.parameters);
        expect(s.bytesByDtype).to.deep.equal({ float32: r.parameters * 4 });
        expect(s.macsByOp).to.deep.equal(r.macsByOp);
        expect(s.macs).to.equal(sum(r.macsByOp));
      });
    }
  });

  it('matches PyTorch for the CNN and the MLP (MACs by forward hooks; parameters with BatchNorm statistics)', async function () {
    if (!hasPython('torch')) this.skip();
    this.timeout(120_000);
    const ref = runPython<Record<'cnn' | 'mlp', { macsByOp: Record<string, number>; parameters: number }>>(TORCH_REFERENCE);
    for (const name of ['cnn', 'mlp'] as const) {
      const s = await measureSize(await loadModel(join(ROOT, `fixtures/fmnist-${name}.onnx`)));
      expect(s.macsByOp, name).to.deep.equal(ref[name].macsByOp);
      expect(s.parameters, name).to.equal(ref[name].parameters);
    }
  });

  it('counts the files of a model saved with external data', async () => {
    const path = join(tmp, 'external.onnx');
    const saved = await saveModel(await loadModel(CNN), path, { externalData: true });
    expect(saved.externalDataFile).to.be.a('string');
    const onDisk = statSync(path).size + statSync(saved.externalDataFile!).size;
    const s = await measureSize(await loadModel(path), { path });
    expect(s.bytes).to.equal(onDisk);
    expect(s.bytes).to.be.greaterThan(statSync(path).size);
    // the weights are the same wherever they are stored
    const inline = await measureSize(await loadModel(CNN), { path: CNN });
    expect(s.parameters).to.equal(inline.parameters);
    expect(s.macs).to.equal(inline.macs);
  });

  it('without a path, measures the model as saveModel writes it', async () => {
    const model = await loadModel(CNN);
    const path = join(tmp, 'resaved.onnx');
    await saveModel(model, path);
    const s = await measureSize(model);
    expect(s.bytes).to.equal(statSync(path).size);
    expect((await measureSize(model, { path })).gzipBytes).to.equal(s.gzipBytes);
  });

  it('zeroed weights: zero share counts them and gzip shrinks', async () => {
    const dense = await measureSize(await loadModel(CNN));
    const { model, zeroed } = await cnnWithZeroedGemm();
    const s = await measureSize(model);
    expect(s.parameters).to.equal(dense.parameters);
    expect(s.zeroShare).to.equal(zeroed / dense.parameters);
    expect(s.bytes).to.equal(dense.bytes);
    // 392 KiB of zeros compress to almost nothing: the gzip must lose most of those bytes
    expect(dense.gzipBytes - s.gzipBytes).to.be.greaterThan(0.9 * zeroed * 4);
  });

  it('a sparse initializer counts at its dense size, and its implicit zeros count as zeros', async () => {
    const { model, zeroed } = await cnnWithZeroedGemm();
    const dense = await measureSize(model);
    const report = toSparseStorage(model, { mode: 'on' });
    expect(report.weights.some((w) => w.stored === 'sparse')).to.equal(true);
    expect(model.graph.sparseInitializers.length).to.be.greaterThan(0);
    const s = await measureSize(model);
    expect(s.parameters).to.equal(dense.parameters);
    expect(s.zeroShare).to.equal(zeroed / dense.parameters);
    expect(s.macs).to.equal(dense.macs);
    expect(s.bytes).to.be.lessThan(dense.bytes);
  });

  describe('quantized models have the MACs of their float model', () => {
    const calibration = (model: Model) =>
      (async function* () {
        for (let i = 0; i < 4; i++) yield syntheticFeeds(model, { batch: 4, seed: i });
      })();

    for (const name of ['cnn', 'mobilenet']) {
      it(`fmnist-${name}: static QDQ and QOperator, dynamic`, async () => {
        const float = await loadModel(join(ROOT, `fixtures/fmnist-${name}.onnx`));
        const ref = countMacs(float);
        expect(ref.unresolved).to.deep.equal([]);
        const variants = [
          { mode: 'static' as const, calibration: calibration(float), samples: 16, latency: 'off' as const },
          { mode: 'static' as const, calibration: calibration(float), samples: 16, latency: 'off' as const, format: 'qoperator' as const },
          { mode: 'dynamic' as const, latency: 'off' as const },
        ];
        for (const options of variants) {
          const { model } = await quantize(float, options);
          const label = `${options.mode} ${options.format ?? 'qdq'}`;
          const q = countMacs(model);
          expect(q.unresolved, label).to.deep.equal([]);
          expect(q.macs, label).to.equal(ref.macs);
          // the op types change (QLinearConv, MatMulInteger, …), the work per op type does not
          expect(Object.values(q.macsByOp).sort(), label).to.deep.equal(Object.values(ref.macsByOp).sort());
        }
      });
    }

    it('4-bit MatMulNBits (MatMul through packed weights)', async () => {
      const float = await loadModel(join(ROOT, 'fixtures/fmnist-mlp.onnx'));
      const { model } = await quantize(float, { mode: 'weight-only', bits: 4 });
      const q = countMacs(model);
      expect(q.macsByOp).to.have.property('MatMulNBits');
      expect(q.macs).to.equal(countMacs(float).macs);
    });

    it('an int8 weight that dequantizes to 0 is a zero', async () => {
      const { model: float, zeroed } = await cnnWithZeroedGemm();
      const { model } = await quantize(float, { mode: 'static', calibration: calibration(float), samples: 16, latency: 'off' });
      const s = await measureSize(model);
      // every zeroed float weight is an int8 zero point after quantization (and small weights may round to it)
      expect(s.zeroShare * s.parameters).to.be.at.least(zeroed);
      expect(s.bytesByDtype).to.have.property('int8');
    });
  });

  it('MatMul with a symbolic batch and ConvTranspose, hand-computed', () => {
    const m = new Model();
    m.irVersion = 8;
    m.opsetImports.set('', 13);
    const g = m.graph;
    const x = g.declareValue('x');
    x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 3, 4] };
    g.inputs.push(x);
    const w = g.addInitializer('w', Tensor.from('float32', [4, 5], new Float32Array(20)));
    const mm = g.addNode({ opType: 'MatMul', inputs: [x, w], outputs: ['y'] });
    const img = g.declareValue('img');
    img.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 2, 4, 4] };
    g.inputs.push(img);
    const k = g.addInitializer('k', Tensor.from('float32', [2, 3, 3, 3], new Float32Array(54)));
    const ct = g.addNode({ opType: 'ConvTranspose', inputs: [img, k], outputs: ['z'] });
    ct.setAttr('strides', attr.ints([2, 2]));
    g.outputs.push(mm.output(), ct.output());
    const { macs, macsByOp, unresolved } = countMacs(m);
    expect(unresolved).to.deep.equal([]);
    // MatMul: batch 1 × 3 rows × 5 columns, each a dot product of 4
    // ConvTranspose: each of the 2·4·4 input elements is scattered into 3 output channels × 3·3 kernel positions
    expect(macsByOp).to.deep.equal({ MatMul: 3 * 5 * 4, ConvTranspose: 2 * 4 * 4 * 3 * 3 * 3 });
    expect(macs).to.equal(60 + 864);
    // the model given is not modified: no types were written into it
    expect(mm.output().type).to.equal(undefined);
  });
});
