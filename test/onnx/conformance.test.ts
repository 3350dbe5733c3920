/**
 * Golden conformance: every ONNX conformance model (node, simple, pytorch-converted, pytorch-operator) is loaded,
 * re-encoded by onnxpress, and the RE-ENCODED bytes are run by onnxruntime on each test data set; outputs must
 * match the expected `output_N.pb` within the ONNX backend tests' tolerance (exact for integers, bools, strings).
 *
 * A model counts as skipped only when onnxruntime cannot load, run or reproduce it even from the ORIGINAL bytes;
 * then the re-encoded model must still give exactly the original's outputs. Skips are grouped by reason.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, loadModel, type Model } from '../../src/index.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { encodeTensorFile, loadNamedTensor, loadTensor, saveTensor } from '../../src/onnx/tensorfile.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { float16ToFloat32 } from '../../src/onnx/codecs.js';
import { conformanceCases, numbered, type ConformanceCase } from '../helpers/conformance.js';

const GROUPS = ['node', 'simple', 'pytorch-converted', 'pytorch-operator'];
const RTOL = 1e-3;
const ATOL = 1e-4;

/** Why a run did not match, with the stage it stopped at. */
class Mismatch extends Error {
  constructor(
    readonly stage: 'load' | 'feed' | 'run' | 'compare',
    message: string,
  ) {
    super(message);
  }
}

interface DataSet {
  feeds: Record<string, Tensor>;
  expected: { name: string; tensor: Tensor | undefined; type: string }[];
}

/** Reads a case's data sets, feeding input_N to the N-th graph input that no initializer backs. */
async function readDataSets(c: ConformanceCase, model: Model): Promise<DataSet[]> {
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  const out: DataSet[] = [];
  for (const ds of c.dataSets) {
    const feeds: Record<string, Tensor> = {};
    const inFiles = numbered(ds, 'input_');
    if (inFiles.length > inputs.length) throw new Error(`${ds}: ${inFiles.length} input files for ${inputs.length} graph inputs`);
    for (const [i, f] of inFiles.entries()) {
      const v = inputs[i];
      if (v.type?.kind === 'other') throw new Mismatch('feed', `onnxruntime-node takes only tensor inputs (input is ${v.type.description})`);
      feeds[v.name] = await loadTensor(f);
    }
    const outFiles = numbered(ds, 'output_');
    const expected = await Promise.all(
      outFiles.map(async (f, i) => {
        const v = model.graph.outputs[i];
        if (!v) throw new Error(`${ds}: ${outFiles.length} output files for ${model.graph.outputs.length} graph outputs`);
        const type = v.type?.kind === 'other' ? v.type.description : 'tensor';
        // non-tensor outputs (sequences, optionals) are stored as other messages; onnxruntime-node cannot return them
        return { name: v.name, tensor: type === 'tensor' ? await loadTensor(f) : undefined, type };
      }),
    );
    out.push({ feeds, expected });
  }
  return out;
}

/** Runs model bytes on every data set; returns the outputs, or throws a Mismatch saying where it stopped. */
async function runAll(bytes: Uint8Array, sets: DataSet[], compare: boolean): Promise<RunTensor[][]> {
  let runner: Runner;
  try {
    runner = await Runner.create(bytes, { threads: 1 });
  } catch (e) {
    throw new Mismatch('load', (e as Error).message);
  }
  try {
    const all: RunTensor[][] = [];
    for (const ds of sets) {
      for (const e of ds.expected) if (!e.tensor) throw new Mismatch('run', `onnxruntime-node returns only tensors (output is ${e.type})`);
      let got: Record<string, RunTensor>;
      try {
        got = await runner.run(ds.feeds, ds.expected.map((e) => e.name));
      } catch (e) {
        throw new Mismatch('run', (e as Error).message);
      }
      const outs = ds.expected.map((e) => got[e.name]);
      if (compare) {
        ds.expected.forEach((e, i) => {
          const why = closeTo(outs[i], e.tensor!);
          if (why) throw new Mismatch('compare', `output "${e.name}": ${why}`);
        });
      }
      all.push(outs);
    }
    return all;
  } finally {
    await runner.release();
  }
}

const FLOATS = new Set(['float32', 'float64', 'float16']);

/** Why `got` is not close to `want` (numpy assert_allclose semantics, NaN equal to NaN), or undefined. */
function closeTo(got: RunTensor, want: Tensor): string | undefined {
  if (got.dtype !== want.dtype) return `dtype ${got.dtype}, expected ${want.dtype}`;
  if (got.dims.join(',') !== want.dims.join(',')) return `shape [${got.dims}], expected [${want.dims}]`;
  if (want.dtype === 'string') {
    const w = want.strings().map((b) => new TextDecoder().decode(b));
    const g = got.data as string[];
    const i = w.findIndex((s, k) => s !== g[k]);
    return i >= 0 ? `element ${i} is ${JSON.stringify(g[i])}, expected ${JSON.stringify(w[i])}` : undefined;
  }
  if (FLOATS.has(want.dtype)) {
    const asF = (d: ArrayLike<number>) => (want.dtype === 'float16' ? float16ToFloat32(d as Uint16Array) : d);
    const g = asF(got.data as ArrayLike<number>);
    const w = asF(want.data() as ArrayLike<number>);
    let worst = -1;
    let worstExcess = 0;
    for (let i = 0; i < w.length; i++) {
      const a = g[i];
      const b = w[i];
      if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
      const excess = Math.abs(a - b) - (ATOL + RTOL * Math.abs(b));
      if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
        worst = i;
        worstExcess = excess;
      }
    }
    return worst >= 0 ? `element ${worst} is ${g[worst]}, expected ${w[worst]} (rtol ${RTOL}, atol ${ATOL})` : undefined;
  }
  const g = got.data as ArrayLike<number | bigint>;
  const w = want.data() as ArrayLike<number | bigint>;
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) return `element ${i} is ${g[i]}, expected ${w[i]} (exact)`;
  return undefined;
}

/** Bitwise equality of two runs' outputs (NaN payloads aside). */
function sameOutputs(a: RunTensor[][], b: RunTensor[][]): boolean {
  return a.every((set, i) =>
    set.every((t, j) => {
      const u = b[i][j];
      if (t.dtype !== u.dtype || t.dims.join(',') !== u.dims.join(',')) return false;
      const x = t.data as ArrayLike<unknown>;
      const y = u.data as ArrayLike<unknown>;
      for (let k = 0; k < x.length; k++) if (x[k] !== y[k] && !(Number.isNaN(x[k]) && Number.isNaN(y[k]))) return false;
      return true;
    }),
  );
}

/** A skip reason with the model-specific details taken out, so that alike reasons group together. */
function reasonKey(m: Mismatch): string {
  if (m.stage === 'compare') return "compare: onnxruntime's output for the original model differs from output_N.pb";
  const line = m.message
    .replace(/^onnxruntime could not load the model on "cpu": /, '')
    .replace(/^onnxruntime \(cpu\) failed to run the model: /, '')
    .replace(/\[ONNXRuntimeError\] : \d+ : \w+ : /, '')
    .replace(/"[^"]*"|'[^']*'/g, '…')
    .replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi, 'N')
    .replace(/ \(.*$/, '');
  return `${m.stage}: ${line.slice(0, 120)}`;
}

/**
 * onnxruntime-node 1.30 on Linux x64 checks 962 of 1072 (node 862, pytorch-converted 59, pytorch-operator 24,
 * simple 17; 1127 outputs). Machines with the en_US.UTF-8 locale installed check more (StringNormalizer).
 */
const FLOOR = { checked: 950, node: 850, pytorchConverted: 55, pytorchOperator: 22, simple: 15, outputs: 1100 };

describe('onnx conformance: re-encoded models run in onnxruntime and match the expected outputs', function () {
  this.timeout(600_000);
  const cases = conformanceCases().filter((c) => GROUPS.includes(c.id.split('/')[0]));

  it(`all models of ${GROUPS.join(', ')}`, async function () {
    if (!cases.length) throw new Error('libonnx-testdata is not installed: apt-get install libonnx-testdata');
    const t0 = performance.now();
    let checked = 0;
    let dataSets = 0;
    let outputs = 0;
    const perGroup = new Map<string, number>();
    const skipped = new Map<string, string[]>();
    const failures: string[] = [];
    for (const c of cases) {
      try {
        const model = await loadModel(c.model);
        const reencoded = encodeModel(model);
        let sets: DataSet[] | undefined;
        let ours: Mismatch;
        try {
          sets = await readDataSets(c, model);
          await runAll(reencoded, sets, true);
          checked++;
          dataSets += sets.length;
          outputs += sets.reduce((n, s) => n + s.expected.length, 0);
          const group = c.id.split('/')[0];
          perGroup.set(group, (perGroup.get(group) ?? 0) + 1);
          continue;
        } catch (e) {
          if (!(e instanceof Mismatch)) throw e;
          ours = e;
        }
        // the re-encoded model did not pass: that is a skip only if the original bytes fail the same way
        const original = readFileSync(c.model);
        let theirs: Mismatch | undefined;
        try {
          if (sets) await runAll(original, sets, true);
          else {
            await runAll(original, [], false); // it loads, so what onnxruntime-node cannot do is take these feeds
            theirs = ours;
          }
        } catch (e) {
          if (!(e instanceof Mismatch)) throw e;
          theirs = e;
        }
        if (!theirs) {
          failures.push(`${c.id}: the original model passes but the re-encoded one fails at ${ours.stage}: ${ours.message}`);
          continue;
        }
        if (theirs.stage !== ours.stage && ours.stage !== 'feed') {
          failures.push(`${c.id}: the re-encoded model fails at ${ours.stage} (${ours.message}) but the original at ${theirs.stage} (${theirs.message})`);
          continue;
        }
        if (ours.stage === 'compare' && !sameOutputs(await runAll(original, sets!, false), await runAll(reencoded, sets!, false))) {
          // onnxruntime disagrees with the expected data even on the original: ours must agree with the original exactly
          failures.push(`${c.id}: the re-encoded model's outputs differ from the original model's outputs`);
          continue;
        }
        const key = reasonKey(theirs);
        skipped.set(key, [...(skipped.get(key) ?? []), c.id]);
      } catch (e) {
        failures.push(`${c.id}: ${(e as Error).stack ?? e}`);
      }
    }
    const nSkipped = [...skipped.values()].reduce((n, l) => n + l.length, 0);
    const lines = [
      `conformance: ${cases.length} models; ${checked} checked (${dataSets} data sets, ${outputs} outputs), ${nSkipped} skipped, ${failures.length} failed, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      `  checked per group: ${[...perGroup].map(([g, n]) => `${g} ${n}`).join(', ')}`,
      '  skipped (onnxruntime cannot load, run or reproduce the ORIGINAL model):',
      ...[...skipped].sort((a, b) => b[1].length - a[1].length).map(([k, ids]) => `    ${String(ids.length).padStart(4)}  ${k}  [${ids.slice(0, 3).map((id) => id.split('/')[1]).join(', ')}${ids.length > 3 ? ', …' : ''}]`),
    ];
    console.log(lines.join('\n'));
    expect(failures, failures.join('\n')).to.deep.equal([]);
    expect(checked + nSkipped).to.equal(cases.length);
    // floors: what this onnxruntime build passes today, minus a small margin for a different build
    expect(checked, 'models checked').to.be.at.least(FLOOR.checked);
    expect(perGroup.get('node') ?? 0, 'node models checked').to.be.at.least(FLOOR.node);
    expect(perGroup.get('pytorch-converted') ?? 0, 'pytorch-converted models checked').to.be.at.least(FLOOR.pytorchConverted);
    expect(perGroup.get('pytorch-operator') ?? 0, 'pytorch-operator models checked').to.be.at.least(FLOOR.pytorchOperator);
    expect(perGroup.get('simple') ?? 0, 'simple models checked').to.be.at.least(FLOOR.simple);
    expect(outputs, 'outputs compared').to.be.at.least(FLOOR.outputs);
  });

  it('loadTensor reads every tensor .pb of the test data, and encodeTensorFile writes it back byte for byte', async function () {
    const dir = mkdtempSync(join(tmpdir(), 'onnxpress-pb-'));
    let files = 0;
    const failures: string[] = [];
    try {
      for (const c of cases) {
        const model = await loadModel(c.model);
        const inputs = model.graph.inputs.filter((v) => !v.initializer);
        for (const ds of c.dataSets) {
          const pairs = [
            ...numbered(ds, 'input_').map((f, i) => [f, inputs[i]] as const),
            ...numbered(ds, 'output_').map((f, i) => [f, model.graph.outputs[i]] as const),
          ];
          for (const [f, v] of pairs) {
            if (v?.type?.kind === 'other') continue; // sequences and optionals are other messages
            try {
              const bytes = readFileSync(f);
              const { name, tensor } = await loadNamedTensor(bytes, { source: f });
              if (v) expect(name === '' || name === v.name, `${f}: name ${name}`).to.equal(true);
              expect(Buffer.compare(Buffer.from(encodeTensorFile(tensor)), bytes), f).to.equal(0);
              if (files % 50 === 0) {
                // through a file as well, renamed
                const out = join(dir, 'copy.pb');
                await saveTensor(tensor, out, { name: 'renamed' });
                const back = await loadNamedTensor(out);
                expect(back.name).to.equal('renamed');
                expect([back.tensor.dtype, back.tensor.dims.join(',')]).to.deep.equal([tensor.dtype, tensor.dims.join(',')]);
                expect(Buffer.compare(Buffer.from(encodeTensorFile(back.tensor, { name })), bytes), `${f} via saveTensor`).to.equal(0);
              }
              files++;
            } catch (e) {
              failures.push(`${f}: ${(e as Error).message}`);
            }
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`tensor files: ${files} read and rewritten byte for byte`);
    expect(failures, failures.slice(0, 10).join('\n')).to.deep.equal([]);
    expect(files).to.be.greaterThan(2000);
  });
});
