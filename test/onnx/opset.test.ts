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
import type { Model } from '../../src/onnx/ir.js';
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
});
