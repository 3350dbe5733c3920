/**
 * Raising opsets (src/onnx/opset.ts), checked against the ONNX conformance data rather than against itself: every
 * conformance model below opset 13 that onnxruntime runs is raised to 13 (when nothing blocks it) and must still
 * reproduce its stored expected outputs in onnxruntime; a model that cannot be raised must say why and stay as it
 * was. Then the static quantizer, which raises what it is given, on the PyTorch exports among them.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { PassError } from '../../src/errors.js';
import { loadModel } from '../../src/onnx/io.js';
import { Model, attr } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { upgradeBlockers, upgradeOpset } from '../../src/onnx/opset.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { loadTensor } from '../../src/onnx/tensorfile.js';
import { quantize } from '../../src/quantize/quantize.js';
import { conformanceCases, numbered, type ConformanceCase } from '../helpers/conformance.js';
import { hasPython, runPython } from '../helpers/python.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';

const RTOL = 1e-3;
const ATOL = 1e-4;

interface Case {
  c: ConformanceCase;
  feeds: Record<string, RunTensor>;
  expected: RunTensor[];
}

/** The first data set of a case as feeds and expected outputs; undefined when it has non-tensor values. */
async function readCase(c: ConformanceCase, model: Model): Promise<Case | undefined> {
  const ds = c.dataSets[0];
  if (!ds) return undefined;
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  const inFiles = numbered(ds, 'input_');
  if (inFiles.length !== inputs.length || inputs.some((v) => v.type?.kind === 'other')) return undefined;
  try {
    const feeds: Record<string, RunTensor> = {};
    for (const [i, f] of inFiles.entries()) {
      const t = await loadTensor(f);
      feeds[inputs[i]!.name] = { dtype: t.dtype, dims: t.dims, data: t.data() as RunTensor['data'] };
    }
    const expected = await Promise.all(
      numbered(ds, 'output_').map(async (f) => {
        const t = await loadTensor(f);
        return { dtype: t.dtype, dims: t.dims, data: t.data() as RunTensor['data'] };
      }),
    );
    return { c, feeds, expected };
  } catch {
    return undefined;
  }
}

/** onnxruntime's outputs for a model, or undefined when it cannot load or run it. */
async function run(model: Model, feeds: Record<string, RunTensor>): Promise<RunTensor[] | undefined> {
  let runner: Runner | undefined;
  try {
    runner = await Runner.create(encodeModel(model));
    const out = await runner.run(feeds);
    return runner.outputNames.map((n) => out[n]!);
  } catch {
    return undefined;
  } finally {
    await runner?.release();
  }
}

/** Whether outputs match the expected ones within the ONNX backend tests' tolerance (NaN matches NaN). */
function matches(got: RunTensor[], want: RunTensor[]): string | undefined {
  if (got.length !== want.length) return `${got.length} outputs, expected ${want.length}`;
  for (let k = 0; k < want.length; k++) {
    const a = got[k]!, b = want[k]!;
    if (a.dims.join() !== b.dims.join()) return `output ${k} has dims [${a.dims}], expected [${b.dims}]`;
    for (let i = 0; i < b.data.length; i++) {
      const x = Number(a.data[i]), y = Number(b.data[i]);
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (typeof a.data[i] === 'string' ? a.data[i] !== b.data[i] : !(Math.abs(x - y) <= ATOL + RTOL * Math.abs(y))) return `output ${k}[${i}] = ${a.data[i]}, expected ${b.data[i]}`;
    }
  }
  return undefined;
}

describe('onnx/opset: raising conformance models to opset 13', function () {
  this.timeout(600_000);
  const cases = conformanceCases().filter((c) => ['node', 'simple', 'pytorch-converted', 'pytorch-operator'].includes(c.id.split('/')[0]!));
  before(function () {
    if (!cases.length) this.skip();
  });

  it('every model onnxruntime runs and nothing blocks reproduces its expected outputs at opset 13; a blocked one says why and is unchanged', async () => {
    let raised = 0, blocked = 0, rewrote = 0;
    const failures: string[] = [];
    for (const c of cases) {
      let model: Model;
      try {
        model = await loadModel(c.model);
      } catch {
        continue;
      }
      const from = model.opset('') ?? 1;
      if (from >= 13) continue;
      const k = await readCase(c, model);
      if (!k) continue;
      // only what onnxruntime reproduces at the original opset is a fair comparison
      const before = await run(model, k.feeds);
      if (!before || matches(before, k.expected)) continue;
      const bytes = encodeModel(model);
      if (upgradeBlockers(model, 13).length) {
        expect(() => upgradeOpset(model, 13), c.id).to.throw(PassError, /^Cannot raise the model's opset from \d+ to 13: /);
        expect(encodeModel(model), `${c.id}: unchanged`).to.deep.equal(bytes);
        blocked++;
        continue;
      }
      const r = upgradeOpset(model, 13);
      if (Object.keys(r.rewritten).length) rewrote++;
      expect(model.opset('')).to.equal(13);
      const after = await run(model, k.feeds);
      const why = after ? matches(after, k.expected) : 'onnxruntime cannot run it';
      if (why) failures.push(`${c.id} (opset ${from}; rewrote ${JSON.stringify(r.rewritten)}): ${why}`);
      raised++;
    }
    expect(failures, failures.slice(0, 8).join('\n')).to.deep.equal([]);
    expect(raised).to.be.above(150);
    expect(rewrote).to.be.above(20);
    expect(blocked).to.be.above(0);
  });

  it('quantizes PyTorch exports at opset 6–9: raised, int8, runs in onnxruntime close to float, passes the ONNX checker', async () => {
    let quantized = 0;
    const failures: string[] = [];
    const dir = await mkdtemp(join(tmpdir(), 'onnxpress-opset-'));
    const files: string[] = [];
    for (const c of cases.filter((x) => x.id.startsWith('pytorch-'))) {
      let model: Model;
      try {
        model = await loadModel(c.model);
      } catch {
        continue;
      }
      const k = await readCase(c, model);
      if (!k || Object.values(k.feeds).some((f) => f.dtype !== 'float32')) continue;
      const float = await run(model, k.feeds);
      if (!float) continue;
      const rows = Object.values(k.feeds)[0]!.dims[0] || 1;
      const { model: q, report } = await quantize(model, { calibration: (async function* () { yield k.feeds; })(), samples: rows, latency: 'off' });
      if (report.outcome === 'float' || !q.graph.nodes.some((n) => n.opType === 'QuantizeLinear')) continue;
      expect(q.opset('')).to.equal(13);
      const got = await run(q, k.feeds);
      if (!got) {
        failures.push(`${c.id}: onnxruntime cannot run the int8 model`);
        continue;
      }
      for (let o = 0; o < float.length; o++) {
        const a = float[o]!.data as Float32Array, b = got[o]!.data as Float32Array;
        let lo = Infinity, hi = -Infinity, err = 0;
        for (let i = 0; i < a.length; i++) {
          lo = Math.min(lo, a[i]!);
          hi = Math.max(hi, a[i]!);
          err = Math.max(err, Math.abs(a[i]! - b[i]!));
        }
        // calibrated on these very inputs: within 5% of the output's range
        if (err > 0.05 * Math.max(hi - lo, 1e-6)) failures.push(`${c.id}: output ${o} off by ${err} on a range of ${hi - lo}`);
      }
      quantized++;
      const file = join(dir, `${c.id.replace(/\W/g, '_')}.onnx`);
      await writeFile(file, encodeModel(q));
      files.push(file);
    }
    try {
      expect(failures, failures.slice(0, 8).join('\n')).to.deep.equal([]);
      expect(quantized).to.be.above(25);
      if (hasPython('onnx')) {
        const checked = runPython<string[]>(
          'import json, sys, onnx\nout = []\nfor f in json.load(sys.stdin):\n    try:\n        onnx.checker.check_model(onnx.load(f), full_check=True)\n    except Exception as e:\n        out.append(f"{f}: {e}")\nprint(json.dumps(out))',
          files,
        );
        expect(checked).to.deep.equal([]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('legacy broadcast (opset 6, which onnxruntime cannot run) is raised to what it meant: B aligned at the axis', async () => {
    const m = new Model();
    m.irVersion = 3;
    m.opsetImports.set('', 6);
    const g = m.graph;
    const x = g.declareValue('x');
    x.type = { kind: 'tensor', elemType: 'float32', shape: [2, 3, 2, 2] };
    const b = g.declareValue('b');
    b.type = { kind: 'tensor', elemType: 'float32', shape: [3] };
    g.inputs.push(x, b);
    const y = g.addNode({ opType: 'Sub', name: 'sub', inputs: [x, b], outputs: ['y'], attributes: { broadcast: attr.int(1), axis: attr.int(1) } }).output();
    y.type = { kind: 'tensor', elemType: 'float32', shape: [2, 3, 2, 2] };
    g.outputs.push(y);
    const xs = Float32Array.from({ length: 24 }, (_, i) => i * 0.5), bs = Float32Array.of(1, 10, 100);
    expect(await run(m, { x: { dtype: 'float32', dims: [2, 3, 2, 2], data: xs }, b: { dtype: 'float32', dims: [3], data: bs } })).to.equal(undefined);
    expect(upgradeOpset(m, 13).rewritten).to.deep.equal({ Sub: 1 });
    const out = (await run(m, { x: { dtype: 'float32', dims: [2, 3, 2, 2], data: xs }, b: { dtype: 'float32', dims: [3], data: bs } }))!;
    // the legacy meaning: b[c] subtracted from every x[n, c, ·, ·]
    expect(Array.from(out[0]!.data as Float32Array)).to.deep.equal(Array.from(xs, (v, i) => Math.fround(v - bs[Math.floor(i / 4) % 3]!)));
  });

  it('quantizes an opset-9 model whose raise adds tensors (Softmax over channels): calibrated as raised, close to float', async () => {
    // x [n, 4, 5, 5] → Conv → Relu → Add(·, b [4, 1, 1]) → Softmax (axis 1: the old 2-D semantics) → y
    const m = new Model();
    m.irVersion = 4;
    m.opsetImports.set('', 9);
    const g = m.graph;
    const x = g.declareValue('x');
    x.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 4, 5, 5] };
    const b = g.declareValue('b');
    b.type = { kind: 'tensor', elemType: 'float32', shape: [4, 1, 1] };
    g.inputs.push(x, b);
    const w = g.addInitializer('w', Tensor.from('float32', [4, 4, 3, 3], Array.from({ length: 144 }, (_, i) => Math.sin(i) * 0.3)));
    const c = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, w], outputs: ['c'], attributes: { pads: attr.ints([1, 1, 1, 1]) } }).output();
    const r = g.addNode({ opType: 'Relu', name: 'relu', inputs: [c], outputs: ['r'] }).output();
    const a = g.addNode({ opType: 'Add', name: 'add', inputs: [r, b], outputs: ['a'] }).output();
    const y = g.addNode({ opType: 'Softmax', name: 'softmax', inputs: [a], outputs: ['y'], attributes: { axis: attr.int(1) } }).output();
    y.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 4, 5, 5] };
    g.outputs.push(y);
    const feeds: Record<string, RunTensor> = {
      x: { dtype: 'float32', dims: [8, 4, 5, 5], data: Float32Array.from({ length: 800 }, (_, i) => Math.cos(i * 0.7)) },
      b: { dtype: 'float32', dims: [4, 1, 1], data: Float32Array.of(0.5, -0.25, 1, 0) },
    };
    const float = (await run(m, feeds))!;
    expect(float, 'onnxruntime runs the opset-9 model').not.to.equal(undefined);
    const { model: q, report } = await quantize(m, { calibration: (async function* () { yield feeds; })(), samples: 8, latency: 'off' });
    expect(q.opset('')).to.equal(13);
    expect(report.notes.join('\n')).to.match(/raised the default-domain opset from 9 to 13 \(rewrote Softmax ×1/);
    expect(q.graph.nodes.some((n) => n.opType === 'QuantizeLinear')).to.equal(true);
    const got = (await run(q, feeds))!;
    const want = float[0]!.data as Float32Array, have = got[0]!.data as Float32Array;
    // a softmax over the whole flattened sample: values near 1/100
    for (let i = 0; i < want.length; i++) expect(Math.abs(have[i]! - want[i]!), `y[${i}]`).to.be.below(0.003);
    expect(m.opset('')).to.equal(9);
  });
});
