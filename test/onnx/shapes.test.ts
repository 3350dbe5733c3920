/**
 * Shape inference (src/onnx/infer), checked against references that are not this code:
 *
 * 1. the expected outputs of every ONNX conformance model (dims and dtype of `output_N.pb`), once as the models
 *    are and once with their small (rank ≤ 1) inputs baked in as initializers, so that shape arguments
 *    (Reshape targets, Slice bounds, Resize scales, …) are constants inference must use;
 * 2. onnxruntime's actual intermediate tensors, on the fixtures (symbolic batch kept), on every conformance model,
 *    and on small PyTorch exports with a dynamic batch (Shape → Gather → Concat → Reshape chains);
 * 3. the ONNX reference library (`onnx.shape_inference.infer_shapes`, Debian's python3-onnx);
 * 4. unit cases: broadcasting with symbols, Reshape 0 / −1, Slice bounds, auto_pad, ceil_mode (sizes also checked
 *    against onnxruntime), and the exact contradiction messages.
 */
import { expect } from 'chai';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphError } from '../../src/errors.js';
import { dtypeCode, dtypeFromCode, type DType } from '../../src/onnx/dtype.js';
import { attr, Graph, Model, type Attr, type Dim, type Node, type Value } from '../../src/onnx/ir.js';
import { loadModel } from '../../src/onnx/io.js';
import { decodeTensor, encodeModel } from '../../src/onnx/proto.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { broadcastDim, formatShape, handlerFor, HANDLERS, inferShapes } from '../../src/onnx/infer/index.js';
import { conformanceCases, type ConformanceCase } from '../helpers/conformance.js';
import { hasPython, runPython } from '../helpers/python.js';

const GROUPS = /^(node|simple|pytorch-converted|pytorch-operator)\//;
const INT64_MAX = 9223372036854775807;

// ----------------------------------------------------------------------------------------------------------------
// helpers

/** A TensorProto file's dims and dtype, or undefined when it is not a tensor (sequence and optional outputs). */
function readPb(path: string): { dims: number[]; dtype: DType | undefined; proto: ReturnType<typeof fromBinary<typeof TensorProtoSchema>> } | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const proto = fromBinary(TensorProtoSchema, readFileSync(path));
    return { dims: proto.dims.map(Number), dtype: dtypeFromCode(proto.dataType), proto };
  } catch {
    return undefined;
  }
}

/** Graph inputs that test data feeds: those no initializer backs, in order (input_N.pb is the N-th). */
function fedInputs(g: Graph): Value[] {
  return g.inputs.filter((v) => !v.initializer);
}

/** The test data set's input tensors, by input name; undefined when one is not a readable tensor. */
function readInputs(c: ConformanceCase, model: Model): Record<string, Tensor> | undefined {
  const feeds: Record<string, Tensor> = {};
  for (const [i, v] of fedInputs(model.graph).entries()) {
    const pb = readPb(join(c.dataSets[0], `input_${i}.pb`));
    if (!pb || v.type?.kind !== 'tensor') return undefined;
    try {
      feeds[v.name] = decodeTensor(pb.proto, { source: c.id });
    } catch {
      return undefined;
    }
  }
  return feeds;
}

/** Forgets every type inference could produce: node outputs' types and value_info. */
function forgetInferable(g: Graph): void {
  for (const v of g.values.values()) if (v.producer) v.type = undefined;
  g.valueInfo.length = 0;
}

/** Turns graph inputs of rank ≤ 1 into initializers holding the given data, so their values are constants. */
function bakeSmallInputs(g: Graph, feeds: Record<string, Tensor>): void {
  for (const v of [...g.inputs]) {
    const t = feeds[v.name];
    if (!t || v.initializer || t.dims.length > 1) continue;
    v.initializer = t;
    g.initializers.set(v.name, v);
    g.inputs.splice(g.inputs.indexOf(v), 1);
  }
}

/** Whether an inferred shape agrees with actual dims: same rank, and every fixed dim equal. */
function agrees(shape: readonly Dim[], dims: readonly number[]): boolean {
  return shape.length === dims.length && shape.every((d, i) => typeof d !== 'number' || d === dims[i]);
}

const isFixed = (shape: readonly Dim[]) => shape.every((d) => typeof d === 'number');

/** Runs a model with every node output exposed; undefined when onnxruntime cannot load or run it. */
async function runAll(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, RunTensor> | undefined> {
  const names = model.graph.nodes.flatMap((n) => n.outputs).filter((v): v is Value => v !== null && !v.isGraphOutput).map((v) => v.name);
  let runner: Runner;
  try {
    runner = await Runner.create(model, { extraOutputs: names, threads: 1 });
  } catch {
    return undefined;
  }
  try {
    const given = Object.fromEntries(Object.entries(feeds).filter(([k]) => runner.inputNames.includes(k)));
    for (const name of runner.inputNames) given[name] ??= model.graph.value(name).initializer!;
    return await runner.run(given);
  } catch {
    return undefined;
  } finally {
    await runner.release();
  }
}

/** A one-node model: inputs are float32 shapes (graph inputs) or tensors (initializers). */
function single(
  opType: string,
  inputs: readonly (readonly Dim[] | Tensor | null)[],
  attributes: Record<string, Attr> = {},
  { opset = 17, outputs = 1, name = 'n' }: { opset?: number; outputs?: number; name?: string } = {},
): { model: Model; node: Node } {
  const model = new Model();
  model.opsetImports.set('', opset);
  const g = model.graph;
  g.name = 'unit';
  const values = inputs.map((x, i) => {
    if (x === null) return null;
    if (x instanceof Tensor) return g.addInitializer(`c${i}`, x);
    const v = g.createValue(`x${i}`, { kind: 'tensor', elemType: 'float32', shape: [...x] });
    g.inputs.push(v);
    return v;
  });
  const node = g.addNode({ opType, name, inputs: values, attributes, outputs: Array.from({ length: outputs }, (_, i) => `y${i}`) });
  g.outputs.push(...node.outputs.filter((v): v is Value => v !== null));
  return { model, node };
}

/** Infers a one-node model and returns its first output's shape. */
function shapeOf(opType: string, inputs: readonly (readonly Dim[] | Tensor | null)[], attributes: Record<string, Attr> = {}, opset = 17): readonly Dim[] | undefined {
  const { model, node } = single(opType, inputs, attributes, { opset });
  inferShapes(model);
  return node.output(0).shape;
}

const ints = (values: number[]) => Tensor.from('int64', [values.length], values.map((v) => (v >= INT64_MAX ? 9223372036854775807n : v <= -INT64_MAX ? -9223372036854775807n : BigInt(v))));
const floats = (values: number[]) => Tensor.from('float32', [values.length], values);

/** Actual output dims of a one-node model under onnxruntime, fed with zeros. */
async function ortDims(model: Model): Promise<number[]> {
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    const dims = v.shape!.map(Number);
    feeds[v.name] = Tensor.from('float32', dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));
  }
  const runner = await Runner.create(model, { threads: 1 });
  try {
    return [...(await runner.run(feeds))[model.graph.outputs[0].name].dims];
  } finally {
    await runner.release();
  }
}

// ----------------------------------------------------------------------------------------------------------------
// 1. conformance outputs

/**
 * Outputs whose expected file disagrees with the ONNX type the model declares, so no inference can match it.
 * Each entry says why; the test checks every entry is still needed.
 */
const OUTPUT_EXCEPTIONS: Record<string, string> = {
  'node/test_cast_FLOAT_to_BFLOAT16': 'the test data stores the bfloat16 output as a uint16 TensorProto (ONNX < 1.13 test generator)',
  'node/test_castlike_FLOAT_to_BFLOAT16': 'the test data stores the bfloat16 output as a uint16 TensorProto (ONNX < 1.13 test generator)',
  'node/test_castlike_FLOAT_to_BFLOAT16_expanded': 'the test data stores the bfloat16 output as a uint16 TensorProto (ONNX < 1.13 test generator)',
};

interface OutputTally {
  models: number;
  outputs: number;
  fixed: number;
  partial: number;
  unknown: number;
  mismatches: string[];
  excepted: Set<string>;
}

async function checkConformanceOutputs(bake: boolean): Promise<OutputTally> {
  const t: OutputTally = { models: 0, outputs: 0, fixed: 0, partial: 0, unknown: 0, mismatches: [], excepted: new Set() };
  for (const c of conformanceCases()) {
    if (!GROUPS.test(c.id) || !c.dataSets.length) continue;
    const model = await loadModel(c.model);
    const g = model.graph;
    const outs = g.outputs.map((v, i) => ({ v, i })).filter(({ v }) => v.producer && handlerFor(v.producer.opType, v.producer.domain));
    if (!outs.length) continue;
    for (const { v } of outs) v.type = undefined;
    if (bake) {
      const feeds = readInputs(c, model);
      if (feeds) bakeSmallInputs(g, feeds);
    }
    inferShapes(model);
    let counted = false;
    for (const { v, i } of outs) {
      const expected = readPb(join(c.dataSets[0], `output_${i}.pb`));
      if (!expected) continue;
      counted = true;
      t.outputs++;
      const shape = v.shape;
      if (!shape || !v.elemType) {
        t.unknown++;
        continue;
      }
      if (v.elemType !== expected.dtype || !agrees(shape, expected.dims)) {
        if (OUTPUT_EXCEPTIONS[c.id]) t.excepted.add(c.id);
        else t.mismatches.push(`${c.id} "${v.name}": inferred ${v.elemType} ${formatShape(shape)}, expected ${expected.dtype} ${formatShape(expected.dims)}`);
      } else if (isFixed(shape)) t.fixed++;
      else t.partial++;
    }
    if (counted) t.models++;
  }
  return t;
}

describe('onnx/infer: conformance outputs (expected output_N.pb)', function () {
  before(function () {
    if (!conformanceCases().length) throw new Error('libonnx-testdata is not installed: apt-get install libonnx-testdata');
  });

  it('agrees with every expected output whose op it handles, inputs as given', async function () {
    const t = await checkConformanceOutputs(false);
    console.log(`      as given: ${t.models} models, ${t.outputs} outputs: ${t.fixed} fully fixed, ${t.partial} partly (shape arguments are runtime inputs), ${t.unknown} unknown, ${t.excepted.size} listed exceptions`);
    expect(t.mismatches, t.mismatches.join('\n')).to.deep.equal([]);
    expect([...t.excepted].sort()).to.deep.equal(Object.keys(OUTPUT_EXCEPTIONS).sort());
    expect(t.models).to.be.at.least(870);
    expect(t.outputs).to.be.at.least(940);
    expect(t.fixed).to.be.at.least(840);
    expect(t.unknown).to.be.at.most(10);
  });

  it('agrees with every expected output, and fixes nearly all dims, when small inputs are constants', async function () {
    const t = await checkConformanceOutputs(true);
    console.log(`      baked: ${t.models} models, ${t.outputs} outputs: ${t.fixed} fully fixed, ${t.partial} partly, ${t.unknown} unknown`);
    expect(t.mismatches, t.mismatches.join('\n')).to.deep.equal([]);
    expect(t.fixed).to.be.at.least(935);
    expect(t.partial).to.be.at.most(2); // NonZero: its count is data-dependent
  });
});

// ----------------------------------------------------------------------------------------------------------------
// 2. intermediate values against onnxruntime

const TORCH_EXPORT = `
import json, os, sys
import torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
torch.set_num_threads(1)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.qkv = nn.Linear(8, 24)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8 * 4 * 4, 5)
    def forward(self, x):
        b = x.shape[0]
        y = F.relu(self.bn(self.conv(x)))
        y = F.max_pool2d(y, 2, ceil_mode=True)
        t = y.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        q = q.reshape(b, -1, 2, 4).permute(0, 2, 1, 3)
        k = k.reshape(b, -1, 2, 4).permute(0, 2, 3, 1)
        v = v.reshape(b, -1, 2, 4).permute(0, 2, 1, 3)
        a = torch.softmax(q @ k / 2.0, dim=-1) @ v
        t = self.norm(t + a.permute(0, 2, 1, 3).reshape(b, -1, 8))
        y = t.transpose(1, 2).reshape(b, 8, y.shape[2], y.shape[3])
        y = F.interpolate(y, scale_factor=2.0, mode='nearest')
        y = F.adaptive_avg_pool2d(y, 4)
        y = torch.cat([y, y[:, :, :, -1:]], dim=3)[:, :, :, :4]
        return self.head(y.reshape(y.size(0), -1)).unsqueeze(1).squeeze(1)
net = Net().eval()
for opset, path in json.load(sys.stdin):
    torch.onnx.export(net, torch.zeros(2, 3, 7, 7), path, opset_version=opset, input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}})
print(json.dumps(True))
`;

/** Small PyTorch exports with a dynamic batch, made once per run (empty when Debian's torch is missing). */
let torchDir: string | undefined;
function torchModels(): string[] {
  if (!hasPython('torch')) return [];
  if (!torchDir) {
    torchDir = mkdtempSync(join(tmpdir(), 'onnxpress-shapes-'));
    runPython(TORCH_EXPORT, [11, 13, 17].map((o) => [o, join(torchDir!, `attention-opset${o}.onnx`)]));
  }
  return readdirSync(torchDir).sort().map((f) => join(torchDir!, f));
}
after(() => torchDir && rmSync(torchDir, { recursive: true, force: true }));

describe('onnx/infer: intermediate values against onnxruntime', function () {
  it('fmnist-cnn and fmnist-mlp: every value matches, with the batch dim kept as "batch"', async function () {
    const fixtures: [string, number[]][] = [['fixtures/fmnist-cnn.onnx', [2, 1, 28, 28]], ['fixtures/fmnist-mlp.onnx', [2, 784]]];
    for (const [file, dims] of fixtures) {
      const model = await loadModel(file);
      const actual = await runAll(model, { input: Tensor.from('float32', dims, new Float32Array(dims.reduce((a, b) => a * b, 1))) });
      expect(actual, `onnxruntime runs ${file}`).to.not.equal(undefined);
      forgetInferable(model.graph);
      const { unknown } = inferShapes(model);
      expect(unknown).to.deep.equal([]);
      for (const [name, t] of Object.entries(actual!)) {
        const v = model.graph.value(name);
        expect(v.elemType, name).to.equal(t.dtype);
        expect(v.shape, name).to.deep.equal(['batch', ...t.dims.slice(1)]);
      }
      expect(Object.keys(actual!).length).to.equal(model.graph.nodes.length);
    }
  });

  it('every conformance model onnxruntime can run: each inferred fixed dim and dtype matches', async function () {
    let models = 0;
    let values = 0;
    let fixed = 0;
    let skipped = 0;
    const bad: string[] = [];
    for (const c of conformanceCases()) {
      if (!GROUPS.test(c.id) || !c.dataSets.length) continue;
      const model = await loadModel(c.model);
      const feeds = readInputs(c, model);
      const actual = feeds && (await runAll(model, feeds));
      if (!actual) {
        skipped++; // onnxruntime cannot load or run it (training ops, bfloat16, sequences, batchwise RNNs, locales)
        continue;
      }
      forgetInferable(model.graph);
      inferShapes(model);
      models++;
      for (const [name, t] of Object.entries(actual)) {
        const v = model.graph.value(name);
        if (!v.shape) continue;
        values++;
        if (v.elemType !== t.dtype || !agrees(v.shape, t.dims)) bad.push(`${c.id} "${name}" (${v.producer?.opType}): inferred ${v.elemType} ${formatShape(v.shape)}, actual ${t.dtype} ${formatShape(t.dims)}`);
        else if (isFixed(v.shape)) fixed++;
      }
    }
    console.log(`      ${models} models run (${skipped} onnxruntime cannot run), ${values} values with a shape, ${fixed} fully fixed`);
    expect(bad, bad.join('\n')).to.deep.equal([]);
    expect(models).to.be.at.least(950);
    expect(values).to.be.at.least(2200);
    expect(fixed).to.be.at.least(2000);
  });

  it('PyTorch exports with a dynamic batch (opsets 11, 13, 17): every dim fixed or "batch", matching a batch of 3', async function () {
    this.timeout(300_000);
    const files = torchModels();
    if (!files.length) this.skip();
    for (const file of files) {
      const model = await loadModel(file);
      const x = Tensor.from('float32', [3, 3, 7, 7], new Float32Array(3 * 3 * 49).map((_, i) => Math.sin(i)));
      const actual = await runAll(model, { x });
      expect(actual, `onnxruntime runs ${file}`).to.not.equal(undefined);
      forgetInferable(model.graph);
      const { unknown } = inferShapes(model);
      expect(unknown, file).to.deep.equal([]);
      let symbolic = 0;
      for (const [name, t] of Object.entries(actual!)) {
        const v = model.graph.value(name);
        expect(v.elemType, `${file} ${name}`).to.equal(t.dtype);
        const shape = v.shape!;
        expect(shape.length, `${file} ${name}`).to.equal(t.dims.length);
        shape.forEach((d, i) => {
          if (d === 'batch') {
            expect(t.dims[i], `${file} ${name} dim ${i}`).to.equal(3);
            symbolic++;
          } else expect(d, `${file} ${name} ${formatShape(shape)} vs [${t.dims}]`).to.equal(t.dims[i]);
        });
      }
      expect(symbolic, file).to.be.greaterThan(20);
    }
  });
});

// ----------------------------------------------------------------------------------------------------------------
// 3. the ONNX reference library

const ONNX_INFER = `
import json, sys, onnx
from onnx import shape_inference
out = {}
for path in json.load(sys.stdin):
    m = onnx.load(path)
    for vi in m.graph.output:
        if vi.type.HasField('tensor_type'):
            vi.type.tensor_type.ClearField('shape')
    del m.graph.value_info[:]
    try:
        m = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception as e:
        out[path] = {'error': str(e)[:300]}
        continue
    vals = {}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        if not vi.type.HasField('tensor_type'):
            continue
        tt = vi.type.tensor_type
        dims = None
        if tt.HasField('shape'):
            dims = [d.dim_value if d.HasField('dim_value') else (d.dim_param if d.HasField('dim_param') else None) for d in tt.shape.dim]
        vals[vi.name] = {'elem': tt.elem_type, 'dims': dims}
    out[path] = {'values': vals}
print(json.dumps(out))
`;

type OnnxTypes = Record<string, { error?: string; values?: Record<string, { elem: number; dims: (number | string | null)[] | null }> }>;

/** onnx's generated names for dims it cannot name ("unk__3") say nothing: read them as unknown. */
const onnxDim = (d: number | string | null): Dim => (typeof d === 'string' && d.startsWith('unk__') ? null : d);

const READ_VALUE_INFO = `
import json, sys, onnx
out = {}
for path in json.load(sys.stdin):
    m = onnx.load(path)
    out[path] = {vi.name: {'elem': vi.type.tensor_type.elem_type, 'dims': [d.dim_value if d.HasField('dim_value') else d.dim_param for d in vi.type.tensor_type.shape.dim]}
                 for vi in list(m.graph.value_info) + list(m.graph.output)}
print(json.dumps(out))
`;

describe('onnx/infer: against onnx.shape_inference (python3-onnx)', function () {
  before(function () {
    if (!hasPython('onnx')) this.skip();
  });

  it('the fixtures: the same element type and shape, symbols included, for every value, also after a save', async function () {
    const files = ['fixtures/fmnist-cnn.onnx', 'fixtures/fmnist-mlp.onnx'];
    const ref = runPython<OnnxTypes>(ONNX_INFER, files);
    const dir = mkdtempSync(join(tmpdir(), 'onnxpress-shapes-'));
    try {
      const saved: string[] = [];
      for (const file of files) {
        const model = await loadModel(file);
        forgetInferable(model.graph);
        const { inferred } = inferShapes(model);
        const values = ref[file].values!;
        const intermediates = Object.keys(values).filter((n) => !model.graph.value(n).isGraphOutput);
        expect(inferred).to.equal(Object.keys(values).length);
        expect(model.graph.valueInfo.map((v) => v.name)).to.have.members(intermediates);
        for (const [name, o] of Object.entries(values)) {
          const v = model.graph.value(name);
          expect({ elem: dtypeCode(v.elemType!), dims: v.shape }, name).to.deep.equal(o);
        }
        const out = join(dir, `${saved.length}.onnx`);
        writeFileSync(out, encodeModel(model));
        saved.push(out);
      }
      // what was written to value_info (no inference on the python side) is what onnx infers
      const written = runPython<Record<string, Record<string, unknown>>>(READ_VALUE_INFO, saved);
      saved.forEach((out, i) => expect(written[out]).to.deep.equal(ref[files[i]].values));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every conformance model and PyTorch export: no disagreement where both infer, and no dim onnx fixes that this leaves open', async function () {
    this.timeout(300_000);
    const files = [...conformanceCases().filter((c) => GROUPS.test(c.id)).map((c) => c.model), ...torchModels()];
    const ref = runPython<OnnxTypes>(ONNX_INFER, files);
    let compared = 0;
    let onnxOnly = 0;
    const bad: string[] = [];
    const gaps: string[] = [];
    for (const file of files) {
      const values = ref[file].values;
      if (!values) continue;
      const model = await loadModel(file);
      forgetInferable(model.graph);
      inferShapes(model);
      for (const [name, o] of Object.entries(values)) {
        const v = model.graph.values.get(name);
        if (!v?.producer || !o.dims) continue;
        const shape = v.shape;
        const where = `${file} "${name}" (${v.producer.opType}): ours ${v.elemType} ${formatShape(shape)}, onnx ${dtypeFromCode(o.elem)} ${formatShape(o.dims)}`;
        if (!shape) {
          onnxOnly++;
          if (handlerFor(v.producer.opType, v.producer.domain) && v.producer.inputs.every((x) => !x || x.shape || x.initializer)) gaps.push(where);
          continue;
        }
        compared++;
        const dims = o.dims.map(onnxDim);
        const same =
          (o.elem === 0 || dtypeCode(v.elemType!) === o.elem) &&
          dims.length === shape.length &&
          shape.every((d, i) => dims[i] === null ? true : d === null ? typeof dims[i] !== 'number' : d === dims[i]);
        if (!same) bad.push(where);
      }
    }
    console.log(`      ${compared} values compared with onnx, ${onnxOnly} typed by onnx only (ops not covered here, or downstream of them)`);
    expect(bad, bad.join('\n')).to.deep.equal([]);
    expect(gaps, gaps.join('\n')).to.deep.equal([]);
    expect(compared).to.be.at.least(2200);
  });
});

// ----------------------------------------------------------------------------------------------------------------
// 4. unit cases

describe('onnx/infer: unit cases', function () {
  it('broadcasts symbols: a symbol against 1 or itself stays, against a fixed size gives the size, two symbols give null', function () {
    expect(broadcastDim('batch', 1)).to.equal('batch');
    expect(broadcastDim(1, 'batch')).to.equal('batch');
    expect(broadcastDim('batch', 'batch')).to.equal('batch');
    expect(broadcastDim('batch', 4)).to.equal(4);
    expect(broadcastDim('a', 'b')).to.equal(null);
    expect(broadcastDim('a', null)).to.equal(null);
    expect(broadcastDim(3, 4)).to.equal(undefined);
    expect(shapeOf('Add', [['batch', 1, 4], [3, 1]])).to.deep.equal(['batch', 3, 4]);
    expect(shapeOf('Mul', [['batch', 'seq', 8], ['batch', 1, 8]])).to.deep.equal(['batch', 'seq', 8]);
    expect(shapeOf('Where', [['n', 1], ['m'], [1, 1]])).to.deep.equal(['n', 'm']);
    expect(shapeOf('Sum', [['a'], ['b'], [1]])).to.deep.equal([null]);
    expect(shapeOf('Max', [[2, 1, 'k'], [5, 1], []])).to.deep.equal([2, 5, 'k']);
  });

  it('Reshape: 0 copies, −1 takes the rest with symbols cancelled, allowzero keeps 0', function () {
    expect(shapeOf('Reshape', [['batch', 3, 4, 5], ints([0, -1])])).to.deep.equal(['batch', 60]);
    expect(shapeOf('Reshape', [[2, 3, 4], ints([0, 0, -1, 2])])).to.deep.equal([2, 3, 2, 2]);
    expect(shapeOf('Reshape', [[2, 3, 4], ints([-1])])).to.deep.equal([24]);
    expect(shapeOf('Reshape', [['batch', 6], ints([3, -1])])).to.deep.equal([3, null]);
    expect(shapeOf('Reshape', [[0, 3], ints([0, 3])], { allowzero: attr.int(1) }, 14)).to.deep.equal([0, 3]);
    expect(shapeOf('Reshape', [[4, 3], ints([2, 0, -1])])).to.deep.equal([2, 3, 2]);

    // PyTorch's x.reshape(x.shape[0], -1, 4): the target is computed from Shape at run time
    const { model, node } = single('Reshape', [['batch', 6, 'seq', 2], null]);
    const g = model.graph;
    const shape = g.addNode({ opType: 'Shape', inputs: [g.value('x0')], outputs: ['s'], before: node });
    const first = g.addNode({ opType: 'Gather', inputs: [shape.output(), g.addInitializer('zero', Tensor.from('int64', [], [0n]))], outputs: ['b'], before: node });
    const unsq = g.addNode({ opType: 'Unsqueeze', inputs: [first.output(), g.addInitializer('axes', ints([0]))], outputs: ['b1'], before: node });
    const target = g.addNode({ opType: 'Concat', inputs: [unsq.output(), g.addInitializer('rest', ints([-1, 4]))], outputs: ['t'], attributes: { axis: attr.int(0) }, before: node });
    node.setInput(1, target.output());
    inferShapes(model);
    expect(g.value('s').shape).to.deep.equal([4]);
    expect(node.output().shape).to.deep.equal(['batch', null, 4]); // 12·seq / 4 has no name
    expect(target.output().shape).to.deep.equal([3]);
  });

  it('Slice: negative starts, INT64_MAX ends, negative steps, default axes, and the opset 1 attributes', function () {
    expect(shapeOf('Slice', [['batch', 10, 20], ints([0, -3]), ints([INT64_MAX, INT64_MAX]), ints([0, 2])])).to.deep.equal(['batch', 10, 3]);
    expect(shapeOf('Slice', [['batch', 10], ints([1]), ints([INT64_MAX]), ints([0])])).to.deep.equal([null, 10]);
    expect(shapeOf('Slice', [[20, 10], ints([-1]), ints([-INT64_MAX]), ints([1]), ints([-1])])).to.deep.equal([20, 10]);
    expect(shapeOf('Slice', [['n', 10], ints([-1]), ints([-INT64_MAX]), ints([0]), ints([-1])])).to.deep.equal(['n', 10]);
    expect(shapeOf('Slice', [[20, 10], ints([8, 1]), ints([1, 1000])], {})).to.deep.equal([0, 9]);
    expect(shapeOf('Slice', [[20, 10, 5], ints([0, 0, 3]), ints([20, 10, 4])])).to.deep.equal([20, 10, 1]);
    expect(shapeOf('Slice', [[20, 10, 5], ints([19, 9]), ints([0, 0]), ints([0, 1]), ints([-5, -3])])).to.deep.equal([4, 3, 5]);
    expect(shapeOf('Slice', [[20, 10, 5]], { starts: attr.ints([0, 10]), ends: attr.ints([3, INT64_MAX]), axes: attr.ints([0, 1]) }, 9)).to.deep.equal([3, 0, 5]);
  });

  it('auto_pad SAME_UPPER / SAME_LOWER / VALID and dilations give onnxruntime\'s sizes', async function () {
    const w = Tensor.from('float32', [4, 2, 3, 3], new Float32Array(72));
    const cases: [Record<string, Attr>, Dim[]][] = [
      [{ auto_pad: attr.string('SAME_UPPER'), strides: attr.ints([2, 2]) }, [1, 4, 4, 5]],
      [{ auto_pad: attr.string('SAME_LOWER'), strides: attr.ints([3, 2]) }, [1, 4, 3, 5]],
      [{ auto_pad: attr.string('VALID'), strides: attr.ints([1, 2]) }, [1, 4, 5, 4]],
      [{ pads: attr.ints([1, 0, 2, 1]), dilations: attr.ints([2, 1]), strides: attr.ints([2, 3]) }, [1, 4, 3, 3]],
    ];
    for (const [attributes, expected] of cases) {
      const { model, node } = single('Conv', [[1, 2, 7, 9], w], attributes, { opset: 13 });
      inferShapes(model);
      expect(node.output().shape, JSON.stringify(attributes)).to.deep.equal(expected);
      expect(await ortDims(model), JSON.stringify(attributes)).to.deep.equal(expected);
    }
    expect(shapeOf('ConvTranspose', [[1, 4, 5, 5], Tensor.from('float32', [4, 2, 3, 3], new Float32Array(72))], { strides: attr.ints([2, 2]), auto_pad: attr.string('SAME_UPPER') })).to.deep.equal([1, 2, 10, 10]);
  });

  it('ceil_mode rounds up but drops a window that would start in the end padding, as onnxruntime does', async function () {
    const cases: [number[], Record<string, Attr>, Dim[]][] = [
      [[1, 1, 7, 7], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, [1, 1, 3, 3]],
      [[1, 1, 7, 7], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), ceil_mode: attr.int(1) }, [1, 1, 4, 4]],
      [[1, 1, 5, 6], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]), ceil_mode: attr.int(1) }, [1, 1, 3, 4]],
      [[1, 1, 6, 7], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]), pads: attr.ints([0, 0, 1, 1]), ceil_mode: attr.int(1) }, [1, 1, 3, 4]],
    ];
    for (const op of ['MaxPool', 'AveragePool']) {
      for (const [input, attributes, expected] of cases) {
        const { model, node } = single(op, [input], attributes, { opset: 13 });
        inferShapes(model);
        expect(node.output().shape, `${op} ${JSON.stringify(attributes)}`).to.deep.equal(expected);
        expect(await ortDims(model), `${op} ${JSON.stringify(attributes)}`).to.deep.equal(expected);
      }
    }
    expect(shapeOf('MaxPool', [['batch', 3, 'h', 32]], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) })).to.deep.equal(['batch', 3, null, 16]);
  });

  it('axes move from attributes to inputs at their opsets (Squeeze/Unsqueeze 13, ReduceSum 13, ReduceMean 18, Split 13, Pad 11, Resize 11)', function () {
    expect(shapeOf('Squeeze', [[1, 3, 1, 5]], { axes: attr.ints([0, -2]) }, 11)).to.deep.equal([3, 5]);
    expect(shapeOf('Squeeze', [[1, 3, 1, 5], ints([0, -2])], {}, 13)).to.deep.equal([3, 5]);
    expect(shapeOf('Unsqueeze', [['batch', 5]], { axes: attr.ints([0, 3]) }, 11)).to.deep.equal([1, 'batch', 5, 1]);
    expect(shapeOf('Unsqueeze', [['batch', 5], ints([-1, 1])], {}, 13)).to.deep.equal(['batch', 1, 5, 1]);
    expect(shapeOf('ReduceSum', [[2, 3, 4]], { axes: attr.ints([1]) }, 11)).to.deep.equal([2, 1, 4]);
    expect(shapeOf('ReduceSum', [[2, 3, 4], ints([1])], { keepdims: attr.int(0) }, 13)).to.deep.equal([2, 4]);
    expect(shapeOf('ReduceMean', [[2, 3, 4]], { axes: attr.ints([-1]) }, 17)).to.deep.equal([2, 3, 1]);
    expect(shapeOf('ReduceMean', [[2, 3, 4], ints([-1])], {}, 18)).to.deep.equal([2, 3, 1]);
    expect(shapeOf('ReduceMax', [[2, 3, 4]], { keepdims: attr.int(0) }, 18)).to.deep.equal([]);
    expect(shapeOf('Pad', [[1, 3, 4, 4]], { pads: attr.ints([0, 0, 1, 2, 0, 0, 3, 4]) }, 10)).to.deep.equal([1, 3, 8, 10]);
    expect(shapeOf('Pad', [['batch', 3, 4, 4], ints([0, 0, 1, 2, 0, 0, 3, 4])], {}, 11)).to.deep.equal(['batch', 3, 8, 10]);
    expect(shapeOf('Resize', [['batch', 3, 5, 5], floats([1, 1, 1.5, 2])], {}, 10)).to.deep.equal(['batch', 3, 7, 10]);
    expect(shapeOf('Resize', [['batch', 3, 5, 5], floats([]), floats([1, 1, 1.5, 2])], {}, 13)).to.deep.equal(['batch', 3, 7, 10]);
    expect(shapeOf('Resize', [[2, 3, 5, 5], null, null, ints([2, 3, 9, 8])], {}, 13)).to.deep.equal([2, 3, 9, 8]);
    const { model, node } = single('Split', [[6, 'batch'], ints([2, 4])], { axis: attr.int(0) }, { opset: 13, outputs: 2 });
    inferShapes(model);
    expect(node.outputs.map((v) => v!.shape)).to.deep.equal([[2, 'batch'], [4, 'batch']]);
  });

  it('Gemm, MatMul, Conv and quantized ops give their output shapes and types', function () {
    expect(shapeOf('Gemm', [[4, 'batch'], [4, 7]], { transA: attr.int(1) })).to.deep.equal(['batch', 7]);
    expect(shapeOf('MatMul', [['b', 1, 5, 6], [3, 6, 2]])).to.deep.equal(['b', 3, 5, 2]);
    expect(shapeOf('MatMul', [[6], [2, 6, 3]])).to.deep.equal([2, 3]);
    const q = single('QLinearMatMul', [[2, 4], [], Tensor.from('uint8', [], [0]), [4, 3], [], Tensor.from('uint8', [], [0]), [], Tensor.from('int8', [], [0])]);
    inferShapes(q.model);
    expect(q.node.output().type).to.deep.equal({ kind: 'tensor', elemType: 'int8', shape: [2, 3] });
    const d = single('DynamicQuantizeLinear', [['n', 8]], {}, { outputs: 3 });
    inferShapes(d.model);
    expect(d.node.outputs.map((v) => [v!.elemType, v!.shape])).to.deep.equal([['uint8', ['n', 8]], ['float32', []], ['uint8', []]]);
  });

  it('leaves unknown ops, other domains and ops with unknown inputs unknown, and lists their outputs', function () {
    const { model, node } = single('NoSuchOp', [[2, 3]]);
    const g = model.graph;
    const relu = g.addNode({ opType: 'Relu', inputs: [node.output()], outputs: ['r'] });
    const custom = g.addNode({ opType: 'Relu', domain: 'com.example', inputs: [g.value('x0')], outputs: ['c'] });
    const ok = g.addNode({ opType: 'Relu', inputs: [g.value('x0')], outputs: ['ok'] });
    const result = inferShapes(model);
    expect(result).to.deep.equal({ inferred: 1, unknown: ['y0', 'r', 'c'] });
    expect(relu.output().type).to.equal(undefined);
    expect(custom.output().type).to.equal(undefined);
    expect(ok.output().shape).to.deep.equal([2, 3]);
    expect(g.valueInfo).to.deep.equal([ok.output()]);
  });

  it('keeps stated types unless overwrite, filling in only their unknown dims', function () {
    const { model, node } = single('Relu', [['batch', 3]]);
    const y = node.output();
    y.type = { kind: 'tensor', elemType: 'float32', shape: [null, 3] };
    expect(inferShapes(model)).to.deep.equal({ inferred: 1, unknown: [] });
    expect(y.shape).to.deep.equal(['batch', 3]);
    expect(inferShapes(model)).to.deep.equal({ inferred: 0, unknown: [] }); // a second run changes nothing
    y.type = { kind: 'tensor', elemType: 'float32', shape: [7, 3] };
    inferShapes(model);
    expect(y.shape).to.deep.equal([7, 3]);
    expect(inferShapes(model, { overwrite: true })).to.deep.equal({ inferred: 1, unknown: [] });
    expect(y.shape).to.deep.equal(['batch', 3]);
  });

  it('infers inside If branches and merges them', function () {
    const { model, node } = single('If', [[]], {}, { opset: 13 });
    const g = model.graph;
    g.inputs[0].type = { kind: 'tensor', elemType: 'bool', shape: [] };
    const x = g.createValue('x', { kind: 'tensor', elemType: 'float32', shape: ['batch', 4] });
    g.inputs.push(x);
    const branch = (name: string, perm: number[] | null) => {
      const b = new Graph(node, model);
      b.name = name;
      const n = b.addNode({ opType: perm ? 'Transpose' : 'Relu', inputs: [x], outputs: [`${name}_out`], attributes: perm ? { perm: attr.ints(perm) } : {} });
      b.outputs.push(n.output());
      return b;
    };
    node.setAttr('then_branch', { type: 'graph', value: branch('then', null) });
    node.setAttr('else_branch', { type: 'graph', value: branch('else', [0, 1]) });
    inferShapes(model);
    expect(node.output().shape).to.deep.equal(['batch', 4]);
    const other = branch('other', [1, 0]);
    node.setAttr('else_branch', { type: 'graph', value: other });
    inferShapes(model, { overwrite: true });
    expect(other.outputs[0].shape).to.deep.equal([4, 'batch']);
    expect(node.output().shape).to.deep.equal([null, null]);
  });

  it('throws a GraphError naming the node and both shapes when the model contradicts itself', function () {
    const message = (op: string, inputs: (Dim[] | Tensor)[], attributes: Record<string, Attr> = {}) => {
      const { model } = single(op, inputs, attributes, { name: 'bad' });
      try {
        inferShapes(model);
      } catch (e) {
        expect(e).to.be.instanceOf(GraphError);
        return (e as Error).message;
      }
      throw new Error(`${op} did not throw`);
    };
    expect(message('Conv', [['batch', 3, 8, 8], Tensor.from('float32', [4, 2, 3, 3], new Float32Array(72))])).to.equal(
      'node "bad" (Conv): input "x0" [batch, 3, 8, 8] has 3 channels but weight input "c1" [4, 2, 3, 3] expects 2 × group 1 = 2',
    );
    expect(message('MatMul', [[2, 5], [4, 3]])).to.equal('node "bad" (MatMul): inner dimensions differ: input "x0" [2, 5] has 5 columns but input "x1" [4, 3] has 4 rows');
    expect(message('Gemm', [[2, 5], [3, 4]], { transB: attr.int(1) })).to.equal(
      'node "bad" (Gemm): inner dimensions differ: A input "x0" [2, 5] has K = 5 but B input "x1" [3, 4] (transB) has K = 4',
    );
    expect(message('Add', [['batch', 3], [4]])).to.equal('node "bad" (Add): cannot broadcast input "x0" [batch, 3] with input "x1" [4]: dimension 1 of the result differs');
    expect(message('Reshape', [[2, 3], ints([4, 2])])).to.equal('node "bad" (Reshape): cannot reshape input "x0" [2, 3] (6 elements) to [4, 2] (8 elements)');
    expect(message('Concat', [[2, 3], [4, 5]], { axis: attr.int(0) })).to.equal(
      'node "bad" (Concat): input "x1" [4, 5] differs from [2, 3] in dimension 1, which is not the concat axis 0',
    );
    expect(message('Conv', [[1, 1, 2, 2], Tensor.from('float32', [1, 1, 5, 5], new Float32Array(25))])).to.equal(
      'node "bad" (Conv): input "x0" [1, 1, 2, 2], input "c1" [1, 1, 5, 5] give output "y0" the impossible shape [1, 1, -2, -2]',
    );
    expect(message('MaxPool', [[1, 1, 4, 4]], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2]) })).to.equal(
      'node "bad" (MaxPool): strides has 1 entry ([2]) but 2 are needed',
    );
  });

  it('has one handler per file in ops/, named verbatim, covering every op compression touches', function () {
    const dir = fileURLToPath(new URL('../../src/onnx/infer/ops', import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
    expect(Object.keys(HANDLERS).sort()).to.deep.equal(files);
    const required = `Conv ConvTranspose Gemm MatMul BatchNormalization Relu Clip LeakyRelu Sigmoid Tanh HardSigmoid HardSwish Add Sub Mul Div Pow
      Sqrt Exp Log Neg Abs Erf Where Equal Greater Less MaxPool AveragePool GlobalAveragePool GlobalMaxPool Flatten Reshape Transpose Concat
      Split Slice Squeeze Unsqueeze Softmax LogSoftmax Gather Resize Pad Cast Identity Dropout Constant Shape Size ReduceMean ReduceSum ReduceMax
      QuantizeLinear DequantizeLinear DynamicQuantizeLinear QLinearConv QLinearMatMul MatMulInteger ConvInteger Expand Tile ConstantOfShape
      Range ArgMax TopK LayerNormalization Einsum Sum Max Min Mean`.split(/\s+/);
    expect(required.filter((op) => !handlerFor(op))).to.deep.equal([]);
    expect(handlerFor('Conv', 'com.microsoft')).to.equal(undefined);
    expect(handlerFor('constructor')).to.equal(undefined);
  });
});
