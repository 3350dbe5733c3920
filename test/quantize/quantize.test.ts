/**
 * quantize(): options, recorded recipe, accuracy-aware fallback, latency-aware placement (with injected timings:
 * no test asserts on wall-clock time), and the `optimize quantize` command end to end on the bundled CNN.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OptionsError } from '../../src/errors.js';
import { evaluate } from '../../src/eval/accuracy.js';
import { loadDataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import { loadModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../../src/onnx/proto.js';
import { Runner } from '../../src/onnx/runner.js';
import { optionsJsonSchema } from '../../src/pass.js';
import { overrideFlag } from '../../src/cli/commands/quantize.js';
import {
  LATENCY_MARGIN,
  QUANTIZE_METADATA_KEY,
  QUANTIZE_PASSES,
  choosePlacement,
  worthFloat,
  decideActivationType,
  decidePlacement,
  decideReduceRange,
  detectCpu,
  quantize,
  type LatencyTimer,
  type PlacementTiming,
} from '../../src/quantize/quantize.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const MLP = join(ROOT, 'fixtures/fmnist-mlp.onnx');
const CNN_DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');
const MLP_DATA = join(ROOT, 'fixtures/fmnist-test-256/mlp.json');
/** The 256-image slice without labels: accuracy is then agreement with the float model. */
const CNN_UNLABELLED: IdxDescriptor = {
  format: 'idx',
  images: join(ROOT, 'fixtures/fmnist-test-256/images-idx3-ubyte.gz'),
  input: { layout: 'NCHW', scale: 0.00392156862745098, mean: [0.286], std: [0.353] },
};
const AVX2_ONLY = 'flags\t\t: fpu sse sse2 avx avx2 fma';
const VNNI = 'flags\t\t: fpu sse sse2 avx avx2 avx512f avx512bw avx512_vnni';

/** A timer that answers from a table instead of a clock (names not in the table take `other`). */
function fakeTimer(table: Record<string, number>, other = 2, calls: string[][] = []): LatencyTimer {
  return async (models) => {
    calls.push(models.map((m) => m.name));
    return new Map(models.map((m) => [m.name, table[m.name] ?? (m.name.startsWith('greedy') ? (table.greedy ?? other) : other)]));
  };
}

function roundTrip(m: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(m)));
}

async function expectOptionsError(p: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(OptionsError);
    expect((e as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected an OptionsError matching ${message}`);
}

describe('quantize: options', function () {
  this.timeout(60_000);
  let cnn: Model;
  before(async () => {
    cnn = await loadModel(CNN);
  });

  it('static mode without calibration data names the option and the alternatives', async () => {
    await expectOptionsError(
      quantize(cnn, {}),
      /^Invalid options for quantize: calibration: static quantization needs calibration data \(a dataset descriptor path, a Dataset or an AsyncIterable of feeds\); mode 'dynamic' or 'weight-only' needs none$/,
    );
  });

  it('says what a data option received', async () => {
    await expectOptionsError(
      quantize(cnn, { calibration: 42 as never }),
      /calibration: Expected a dataset descriptor path, a Dataset or an AsyncIterable of feeds for calibration but received number 42/,
    );
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', maxAccuracyDrop: 1, evalData: { foo: 1 } as never }), /evalData: Expected a dataset descriptor path or a Dataset for evalData but received an object with keys \(one of: "foo"\)/);
  });

  it('refuses fields that do not apply, out-of-range numbers, unknown keys', async () => {
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', bits: 4 }), /bits: bits applies to mode 'weight-only' only, not 'dynamic'/);
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', maxAccuracyDrop: 0.5 }), /evalData: maxAccuracyDrop needs evalData/);
    await expectOptionsError(quantize(cnn, { calibration: CNN_DATA, percentile: 120 }), /percentile: Too big: expected number to be <=100/);
    await expectOptionsError(quantize(cnn, { calibration: CNN_DATA, method: 'kl' as never }), /method: Invalid option: expected one of "minmax"\|"percentile"\|"entropy"\|"mse"/);
    await expectOptionsError(quantize(cnn, { calibration: CNN_DATA, perchannel: true } as never), /Unrecognized key: "perchannel"/);
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', method: 'minmax', movingAverage: true, format: 'qoperator' }), /format: format applies to mode 'static' only/);
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', overrides: { input: { min: 0, max: 1 } } }), /overrides: overrides apply to mode 'static' only/);
    await expectOptionsError(quantize(cnn, { calibration: CNN_DATA, overrides: { input: { min: 2, max: 1 } } }), /overrides: "input": min 2 is above max 1/);
    await expectOptionsError(quantize(cnn, { calibration: CNN_DATA, overrides: { input: { type: 'int4' as never } } }), /overrides\.input\.type: /);
  });

  it('an exclude entry that matches nothing lists the op types and nodes', async () => {
    await expectOptionsError(quantize(cnn, { mode: 'dynamic', exclude: ['Conv', 'NoSuchNode'], latency: 'off' }), /exclude: "NoSuchNode" matches no node name, op type or pattern \(op types: \(one of: "Conv", /);
  });

  it('every pass has a JSON Schema of its options (for docs and config editors)', () => {
    for (const p of QUANTIZE_PASSES) {
      expect(p.inPlace, p.name).to.equal(false);
      const schema = optionsJsonSchema(p) as { properties: Record<string, unknown> };
      expect(schema.properties).to.include.keys('calibration', 'samples', 'method', 'maxAccuracyDrop', 'latency', 'batch');
    }
    expect(QUANTIZE_PASSES.map((p) => p.name)).to.deep.equal(['quantize.static', 'quantize.dynamic', 'quantize.weightOnly']);
  });
});

describe('quantize: machine-dependent defaults', () => {
  it('reads VNNI from cpuinfo flags: no VNNI on x86 → reduce range, VNNI → full range', () => {
    const plain = detectCpu(AVX2_ONLY, 'x64');
    expect(plain).to.deep.include({ vnni: false, amx: false, flags: ['avx2'] });
    expect(decideReduceRange('cpu', plain).value).to.equal(true);
    expect(decideReduceRange('cpu', plain).why).to.match(/without VNNI/);
    const vnni = detectCpu(VNNI, 'x64');
    expect(vnni.vnni).to.equal(true);
    expect(decideReduceRange('cpu', vnni)).to.deep.include({ value: false });
    expect(decideReduceRange('cpu', vnni).why).to.match(/avx512_vnni/);
    expect(decideReduceRange('cpu', detectCpu('flags : amx_tile amx_int8', 'x64')).value).to.equal(false);
    expect(decideReduceRange('cpu', detectCpu('Features : fp asimd asimddp', 'arm64')).value).to.equal(false);
  });

  it('uint8 activations on x86 CPUs, int8 elsewhere', () => {
    expect(decideActivationType('cpu', detectCpu(AVX2_ONLY, 'x64')).value).to.equal('uint8');
    expect(decideActivationType('cpu', detectCpu('Features : fp asimd', 'arm64')).value).to.equal('int8');
    expect(decideActivationType('cuda', detectCpu(AVX2_ONLY, 'x64')).value).to.equal('int8');
  });
});

describe('quantize: recorded recipe', function () {
  this.timeout(120_000);

  it('static: every resolved option and decision is in metadata_props and survives a save', async () => {
    const cnn = await loadModel(CNN);
    const { model, report } = await quantize(cnn, { calibration: CNN_DATA, samples: 64, method: 'minmax', latency: 'off' }, { cpuinfo: AVX2_ONLY, arch: 'x64' });
    expect(model).not.to.equal(cnn);
    expect(cnn.metadata.has(QUANTIZE_METADATA_KEY), 'the input model is not changed').to.equal(false);
    const recipe = JSON.parse(roundTrip(model).metadata.get(QUANTIZE_METADATA_KEY)!) as Record<string, unknown>;
    expect(recipe).to.deep.include({ tool: 'onnxpress', mode: 'static', calibration: CNN_DATA, samples: 64, samplesSeen: 64, method: 'minmax', perChannel: true, format: 'qdq', latency: 'off', ep: 'cpu', batch: 32 });
    expect(recipe.activationType).to.deep.include({ value: 'uint8' });
    expect(recipe.reduceRange).to.deep.include({ value: true });
    expect((recipe.reduceRange as { why: string }).why).to.match(/without VNNI/);
    expect(recipe.cpu).to.deep.include({ vnni: false, flags: ['avx2'] });
    expect(recipe.result).to.deep.include({ placement: 'int8', floatForAccuracy: [], floatForSpeed: [] });
    expect(report.resolved).to.deep.include({ method: 'minmax', samplesSeen: 64 });
    expect(report.outcome).to.equal('quantized');
    expect(Object.values(report.quantizedByOp).reduce((a, b) => a + b, 0)).to.be.greaterThan(0);
    // SQNR is measured for the accuracy search only (it costs two more sessions)
    expect(report.nodes.filter((r) => r.sqnrDb !== undefined)).to.deep.equal([]);
  });

  it('static: a per-tensor override replaces the calibrated range (the Q scale shows it) and is recorded', async () => {
    const cnn = await loadModel(CNN);
    const relu = cnn.graph.nodes.find((n) => n.opType === 'Relu')!.output().name;
    const overrides = { [relu]: { min: 0, max: 25.5 }, nowhere: { max: 1 } };
    const { model, report } = await quantize(cnn, { calibration: CNN_DATA, samples: 64, latency: 'off', overrides }, { cpuinfo: AVX2_ONLY, arch: 'x64' });
    const q = model.graph.nodes.filter((n) => n.opType === 'QuantizeLinear' && n.inputs[0]!.name === relu);
    expect(q).to.have.length(1);
    // uint8 activations, range [0, 25.5]: scale 25.5 / 255, zero point 0
    expect(q[0]!.inputs[1]!.initializer!.data()[0]).to.equal(Math.fround(25.5 / 255));
    expect(Number(q[0]!.inputs[2]!.initializer!.data()[0])).to.equal(0);
    const plain = await quantize(cnn, { calibration: CNN_DATA, samples: 64, latency: 'off' }, { cpuinfo: AVX2_ONLY, arch: 'x64' });
    const q0 = plain.model.graph.nodes.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0]!.name === relu)!;
    expect(q0.inputs[1]!.initializer!.data()[0]).not.to.equal(Math.fround(25.5 / 255));
    expect(report.notes.join('\n')).to.match(/override for "nowhere" unused/);
    const recipe = JSON.parse(model.metadata.get(QUANTIZE_METADATA_KEY)!) as Record<string, unknown>;
    expect(recipe.overrides).to.deep.equal(overrides);
    expect(JSON.parse(plain.model.metadata.get(QUANTIZE_METADATA_KEY)!)).not.to.have.property('overrides');
  });

  it('dynamic: records its own fields and the given (not decided) reduceRange', async () => {
    const mlp = await loadModel(MLP);
    const { model, report } = await quantize(mlp, { mode: 'dynamic', reduceRange: false, latency: 'off' });
    const recipe = JSON.parse(model.metadata.get(QUANTIZE_METADATA_KEY)!) as Record<string, unknown>;
    expect(recipe).to.deep.include({ mode: 'dynamic', latency: 'off', reduceRange: { value: false, why: 'given' } });
    expect(recipe).not.to.have.property('method');
    expect(report.quantizedByOp).to.deep.equal({ Gemm: 2 });
  });
});

describe('quantize: accuracy-aware fallback', function () {
  this.timeout(120_000);

  it('with a tolerance of 0 pp on agreement, falls nodes back (lowest SQNR first) and lists them', async () => {
    const cnn = await loadModel(CNN);
    const evalData = await loadDataset(CNN_UNLABELLED, { inputNames: ['input'] });
    // coarse settings so that the all-int8 model disagrees with float on some of the 256 images
    const { model, report } = await quantize(cnn, {
      calibration: CNN_DATA,
      samples: 64,
      method: 'minmax',
      perChannel: false,
      activationType: 'int8',
      symmetricActivations: true,
      reduceRange: true,
      maxAccuracyDrop: 0,
      evalData,
      latency: 'off',
    });
    const a = report.accuracy!;
    // every node the quantizer could quantize got an SQNR measurement
    for (const n of report.nodes.filter((r) => r.quantized || r.reason === 'accuracy')) expect(n.sqnrDb, n.node).to.be.a('number');
    expect(a.metric).to.equal('agreement');
    expect(a.samples).to.equal(256);
    expect(a.trials[0]!.fellBack).to.deep.equal([]);
    expect(a.trials[0]!.meets, 'the all-int8 model must miss 0 pp for this test to mean anything').to.equal(false);
    expect(a.trials.length).to.be.greaterThan(1);
    const fell = report.keptFloat.filter((k) => k.reason === 'accuracy');
    expect(fell.length).to.be.greaterThan(0);
    for (const k of fell) expect(k.detail).to.match(/SQNR/);
    // the first to fall back had the lowest SQNR
    const sqnrOf = new Map(report.nodes.map((n) => [n.node, n.sqnrDb ?? Infinity]));
    const lowest = [...report.nodes].filter((n) => n.sqnrDb !== undefined).sort((x, y) => x.sqnrDb! - y.sqnrDb!)[0]!;
    expect(a.trials[1]!.fellBack[0]).to.equal(lowest.node);
    expect(sqnrOf.get(a.trials[1]!.fellBack[0]!)).to.equal(lowest.sqnrDb);
    // the table says which stayed int8 and which fell back
    for (const k of fell) expect(report.nodes.find((n) => n.node === k.node)).to.deep.include({ quantized: false, reason: 'accuracy' });
    expect(a.met).to.equal(report.goalMet);
    if (a.met) expect(a.dropPp).to.equal(0);
    const recipe = JSON.parse(model.metadata.get(QUANTIZE_METADATA_KEY)!) as { result: { floatForAccuracy: string[] } };
    expect(recipe.result.floatForAccuracy).to.deep.equal(fell.map((k) => k.node));
  });

  it('a budget of one trial that cannot meet the goal returns the best model and goalMet false', async () => {
    const cnn = await loadModel(CNN);
    const evalData = await loadDataset(CNN_UNLABELLED, { inputNames: ['input'] });
    const { model, report } = await quantize(cnn, {
      calibration: CNN_DATA,
      samples: 64,
      method: 'minmax',
      perChannel: false,
      activationType: 'int8',
      symmetricActivations: true,
      reduceRange: true,
      maxAccuracyDrop: 0,
      evalData,
      maxTrials: 1,
      latency: 'off',
    });
    // the all-int8 model, then one trial with the single lowest-SQNR node in float
    expect(report.accuracy!.trials.map((t) => t.fellBack.length)).to.deep.equal([0, 1]);
    expect(report.accuracy!.met, 'one node in float must not be enough for 0 pp here').to.equal(false);
    expect(report.goalMet).to.equal(false);
    expect(report.notes.join('\n')).to.match(/accuracy goal not met: best drop \d+\.\d\d pp > 0 pp \(the trial budget \(1\) ran out\); returning the best model found/);
    // the best model found is returned, and says how it was made
    expect(report.accuracy!.dropPp).to.equal(Math.min(...report.accuracy!.trials.map((t) => t.dropPp)));
    expect(model.metadata.has(QUANTIZE_METADATA_KEY)).to.equal(true);
  });

  it('searches for the fewest fallbacks: doubling, then bisecting', async () => {
    const cnn = await loadModel(CNN);
    const evalData = await loadDataset(CNN_UNLABELLED, { inputNames: ['input'] });
    const { report } = await quantize(cnn, {
      calibration: CNN_DATA, samples: 64, method: 'minmax', perChannel: false, activationType: 'int8', symmetricActivations: true, reduceRange: true, maxAccuracyDrop: 0, evalData, latency: 'off',
    });
    const counts = report.accuracy!.trials.map((t) => t.fellBack.length);
    expect(counts[0]).to.equal(0);
    // each trial's fallbacks extend the previous lowest-SQNR prefix
    const longest = report.accuracy!.trials.reduce((a, t) => (t.fellBack.length > a.fellBack.length ? t : a));
    for (const t of report.accuracy!.trials) expect(longest.fellBack.slice(0, t.fellBack.length)).to.deep.equal(t.fellBack);
    // doubling counts first: 1, 2, 4, …
    for (let i = 1; i < counts.length && counts[i - 1]! < counts[i]!; i++) expect(counts[i]).to.equal(Math.max(1, 2 * counts[i - 1]!));
    if (report.goalMet) {
      const kept = report.keptFloat.filter((k) => k.reason === 'accuracy').length;
      expect(kept).to.equal(Math.min(...report.accuracy!.trials.filter((t) => t.meets).map((t) => t.fellBack.length)));
    }
  });
});

describe('quantize: latency-aware placement', function () {
  this.timeout(120_000);

  it('choosePlacement: float unless a placement beats it by more than the margin and keeps accuracy', () => {
    expect(choosePlacement([{ name: 'int8', ratio: 1.16 }, { name: 'first-conv-float', ratio: 0.99 }])).to.equal('float');
    expect(choosePlacement([{ name: 'int8', ratio: 0.5 }, { name: 'first-conv-float', ratio: 0.46 }])).to.equal('first-conv-float');
    expect(choosePlacement([{ name: 'int8', ratio: 0.5, accuracyOk: false }, { name: 'b', ratio: 0.6 }])).to.equal('b');
    expect(choosePlacement([{ name: 'int8', ratio: 0.5, accuracyOk: false }])).to.equal('float');
    expect(choosePlacement([{ name: 'int8', ratio: Number.NaN }])).to.equal('float');
    expect(choosePlacement([])).to.equal('float');
    // equally fast within the margin: the placement with fewer float nodes (a smaller file) wins
    expect(choosePlacement([{ name: 'a', ratio: 0.68, floatNodes: ['conv1', 'fc'] }, { name: 'b', ratio: 0.69, floatNodes: ['conv1'] }])).to.equal('b');
    expect(choosePlacement([{ name: 'a', ratio: 0.6, floatNodes: ['conv1', 'fc'] }, { name: 'b', ratio: 0.62, floatNodes: ['conv1'] }])).to.equal('b');
    expect(choosePlacement([{ name: 'a', ratio: 0.6, floatNodes: ['conv1', 'fc'] }, { name: 'b', ratio: 0.64, floatNodes: ['conv1'] }])).to.equal('a');
  });

  it('worthFloat: a node is kept float for speed only when its int8 kernel is slower by 1% of the float model or more', () => {
    const p = { float: new Map<string, number>([['conv1', 150], ['conv2', 9000], ['fc', 25], ['', 40]]), int8: new Map<string, number>([['conv1', 800], ['conv2', 5000], ['fc', 30]]) };
    expect(worthFloat(p, 'conv1')).to.equal(true);
    expect(worthFloat(p, 'conv2')).to.equal(false);
    expect(worthFloat(p, 'fc')).to.equal(false);
    // not profiled (fused away, or named otherwise): kept, the timing decides
    expect(worthFloat(p, 'gap')).to.equal(true);
  });

  it('choosePlacement never picks a placement that is not faster than float, nor one slower than the fastest by more than the margin, nor more float nodes than needed (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            name: fc.string({ minLength: 1 }),
            ratio: fc.double({ min: 0, max: 3, noNaN: false }),
            accuracyOk: fc.option(fc.boolean(), { nil: undefined }),
            floatNodes: fc.array(fc.string(), { maxLength: 4 }),
          }),
          { maxLength: 8, selector: (c) => c.name },
        ),
        (cands) => {
          const chosen = choosePlacement(cands);
          const eligible = cands.filter((c) => c.name !== 'float' && c.accuracyOk !== false && c.ratio < 1 - LATENCY_MARGIN);
          if (chosen === 'float') return eligible.length === 0;
          const c = cands.find((x) => x.name === chosen && eligible.includes(x));
          if (!c) return false;
          const fastest = Math.min(...eligible.map((x) => x.ratio));
          return c.ratio <= fastest + LATENCY_MARGIN && eligible.every((x) => x.ratio > fastest + LATENCY_MARGIN || x.floatNodes.length >= c.floatNodes.length);
        },
      ),
    );
  });

  it('returns the float model unchanged when no placement is faster (injected timings)', async () => {
    const cnn = await loadModel(CNN);
    const calls: string[][] = [];
    const { model, report } = await quantize(cnn, { calibration: CNN_DATA, samples: 32, method: 'minmax' }, { timeLatency: fakeTimer({ float: 1, int8: 1.16 }, 1.02, calls), cpuinfo: AVX2_ONLY, arch: 'x64' });
    expect(model).to.equal(cnn);
    expect(report.outcome).to.equal('float');
    expect(report.goalMet).to.equal(true);
    expect(report.keptFloat).to.deep.equal([]);
    expect(report.latency!.chosen).to.equal('float');
    expect(report.latency!.ratio).to.equal(1);
    expect(report.latency!.why).to.match(/no int8 placement was faster than float on cpu at batch 32 .*returning the float model unchanged/);
    expect(model.metadata.has(QUANTIZE_METADATA_KEY)).to.equal(false);
    // the fixed candidates were timed together with float, then greedy steps each with float and the current best
    expect(calls[0]).to.deep.equal(['float', 'int8', 'first-conv-float', 'last-gemm-float', 'first-conv-last-gemm-float', 'slow-ops-float']);
    for (const c of calls.slice(1)) {
      expect(c[0]).to.equal('float');
      expect(c).to.have.length(3);
    }
    for (const p of report.latency!.placements) expect(p.confirmed).to.equal(undefined);
    const names = report.latency!.placements.map((p) => p.name);
    expect(names.some((n) => n.startsWith('greedy'))).to.equal(true);
  });

  it('keeps the fastest placement and says which nodes stayed float for speed', async () => {
    const cnn = await loadModel(CNN);
    const { model, report } = await quantize(
      cnn,
      { calibration: CNN_DATA, samples: 32, method: 'minmax', maxTrials: 1 },
      { timeLatency: fakeTimer({ float: 1, int8: 0.8, 'first-conv-float': 0.7, 'last-gemm-float': 0.75, 'first-conv-last-gemm-float': 0.6, greedy: 0.9 }) },
    );
    expect(report.outcome).to.equal('quantized');
    expect(report.latency!.chosen).to.equal('first-conv-last-gemm-float');
    expect(report.latency!.ratio).to.be.closeTo(0.6, 1e-9);
    const speed = report.keptFloat.filter((k) => k.reason === 'latency');
    expect(speed.map((k) => k.opType).sort()).to.deep.equal(['Conv', 'Gemm']);
    const recipe = JSON.parse(model.metadata.get(QUANTIZE_METADATA_KEY)!) as { result: { placement: string; floatForSpeed: string[] } };
    expect(recipe.result.placement).to.equal('first-conv-last-gemm-float');
    expect(recipe.result.floatForSpeed).to.have.length(2);
    for (const k of speed) expect(report.nodes.find((n) => n.node === k.node)).to.deep.include({ quantized: false, reason: 'latency' });
  });

  it('a placement that wins one round but not the head-to-head re-timing is not returned', async () => {
    const cnn = await loadModel(CNN);
    let call = 0;
    // first (all candidates) call: int8 looks fast; every later call: int8 is slower than float
    const timer: LatencyTimer = async (models) => {
      call++;
      return new Map(models.map((m) => [m.name, m.name === 'float' ? 1 : m.name === 'int8' ? (call === 1 ? 0.5 : 1.2) : 1.1]));
    };
    const { model, report } = await quantize(cnn, { calibration: CNN_DATA, samples: 32, method: 'minmax', maxTrials: 1 }, { timeLatency: timer });
    expect(model).to.equal(cnn);
    expect(report.outcome).to.equal('float');
    const int8 = report.latency!.placements.find((p) => p.name === 'int8')!;
    expect(int8).to.deep.include({ confirmed: true, ratio: 1.2 });
  });

  it('with several batch sizes, a placement must beat float at each (worst ratio)', async () => {
    const cnn = await loadModel(CNN);
    // int8 is twice as fast at batch 32 but slower at batch 1; everything else is slower than float
    const timer: LatencyTimer = async (models, feeds) => {
      const rows = feeds.input!.dims[0]!;
      return new Map(models.map((m) => [m.name, m.name === 'float' ? 1 : m.name === 'int8' ? (rows === 1 ? 1.2 : 0.5) : 1.5]));
    };
    const both = await quantize(cnn, { calibration: CNN_DATA, samples: 32, method: 'minmax', batch: [32, 1], maxTrials: 1 }, { timeLatency: timer });
    expect(both.report.outcome).to.equal('float');
    expect(both.report.latency!.batches).to.deep.equal([32, 1]);
    expect(both.report.latency!.placements.find((p) => p.name === 'int8')).to.deep.include({ ratio: 1.2, byBatch: { 32: 0.5, 1: 1.2 } });
    const one = await quantize(cnn, { calibration: CNN_DATA, samples: 32, method: 'minmax', batch: 32, maxTrials: 1 }, { timeLatency: timer });
    expect(one.report.latency!.chosen).to.equal('int8');
    expect(one.report.latency!.batches).to.deep.equal([32]);
  });

  it('decidePlacement: passes over a faster placement that fails the accuracy check or the re-timing', async () => {
    const timing = (name: string, ratio: number): PlacementTiming => ({ name, floatNodes: [], ms: ratio, floatMs: 1, ratio });
    const checked: string[] = [], retimed: string[] = [];
    const placements = [timing('int8', 0.5), timing('first-conv-float', 0.6), timing('last-gemm-float', 0.7), timing('slow', 1.2)];
    const chosen = await decidePlacement(placements, {
      accuracyOk: async (name) => (checked.push(name), name !== 'int8'),
      retime: async (name) => (retimed.push(name), { ms: name === 'first-conv-float' ? 1.05 : 0.72, floatMs: 1 }),
    });
    expect(chosen).to.equal('last-gemm-float');
    expect(checked).to.deep.equal(['int8', 'first-conv-float', 'last-gemm-float']);
    expect(retimed).to.deep.equal(['first-conv-float', 'last-gemm-float']);
    expect(placements.map((p) => [p.name, p.accuracyOk, p.confirmed, p.ratio])).to.deep.equal([
      ['int8', false, undefined, 0.5],
      ['first-conv-float', true, true, 1.05],
      ['last-gemm-float', true, true, 0.72],
      ['slow', undefined, undefined, 1.2],
    ]);
    // nothing left that beats float: float
    const none = [timing('int8', 0.5)];
    expect(await decidePlacement(none, { accuracyOk: async () => true, retime: async () => ({ ms: 1, floatMs: 1 }) })).to.equal('float');
    expect(await decidePlacement([timing('int8', 0.9)], { accuracyOk: async () => false, retime: async () => ({ ms: 0.1, floatMs: 1 }) })).to.equal('float');
  });

  it('with a tolerance, the returned placement had its accuracy checked', async () => {
    const cnn = await loadModel(CNN);
    const evalData = await loadDataset(CNN_UNLABELLED, { inputNames: ['input'] });
    const { report } = await quantize(
      cnn,
      { calibration: CNN_DATA, samples: 32, method: 'minmax', maxAccuracyDrop: 1, evalData, maxTrials: 2 },
      { timeLatency: fakeTimer({ float: 1, int8: 0.5 }, 0.7) },
    );
    expect(report.latency!.chosen).to.equal('int8');
    expect(report.latency!.placements.find((p) => p.name === 'int8')).to.deep.include({ accuracyOk: true, confirmed: true });
    expect(report.accuracy!.met).to.equal(true);
  });
});

describe('cli: optimize quantize', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-quantize-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  function optimize(...args: string[]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 110_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('quantizes fmnist-cnn: exit 0, the output loads in onnxruntime and keeps accuracy within 1 point', async () => {
    const out = join(tmp, 'cnn.int8.onnx');
    const r = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--samples', '128', '--latency', 'off');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Quantized \(static\): /);
    expect(r.stdout).to.match(/Size +417\.1 KiB → [\d.]+ KiB \(0\.\d\d×\)/);
    expect(r.stdout).to.match(/Reduce range/);
    const q = await loadModel(out);
    expect(q.graph.nodes.some((n) => n.opType === 'QuantizeLinear')).to.equal(true);
    const runner = await Runner.create(q);
    const data = await loadDataset(CNN_DATA, { inputNames: ['input'] });
    const acc = await evaluate(runner, data);
    await runner.release();
    expect(Math.abs(acc.correct.top1 - 235)).to.be.at.most(2.56); // 1 point of 256
  });

  it('--json prints one document with the report; latency auto never returns a slower model', () => {
    const out = join(tmp, 'cnn.auto.onnx');
    const r = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--samples', '64', '--max-trials', '2', '--json');
    expect(r.status, r.stderr).to.equal(0);
    const doc = JSON.parse(r.stdout) as { output: string; bytes: { before: number; after: number }; report: { outcome: string; latency: { chosen: string; ratio: number; placements: unknown[] } } };
    expect(doc.output).to.equal(out);
    expect(existsSync(out)).to.equal(true);
    expect(doc.report.latency.placements.length).to.be.greaterThan(1);
    // the decision rule, not the clock: whatever was chosen measured faster than float, or float came back
    if (doc.report.latency.chosen === 'float') expect(doc.report.outcome).to.equal('float');
    else expect(doc.report.latency.ratio).to.be.below(1);
  });

  it('missing calibration data: exit 2 with a message, and no output file', () => {
    const out = join(tmp, 'none.onnx');
    const r = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/^optimize: error: Invalid options for quantize: calibration: static quantization needs calibration data/);
    expect(existsSync(out)).to.equal(false);
  });

  it('a run that fails part-way leaves no output file', () => {
    const out = join(tmp, 'failed.onnx');
    const r1 = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--calibration', join(tmp, 'missing.json'));
    expect(r1.status).to.equal(2);
    expect(r1.stderr).to.match(/calibration: Dataset descriptor not found/);
    expect(existsSync(out)).to.equal(false);
    const r2 = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--mode', 'dynamic', '--exclude', 'NoSuchNode');
    expect(r2.status).to.equal(2);
    expect(r2.stderr).to.match(/exclude: "NoSuchNode" matches no node/);
    expect(existsSync(out)).to.equal(false);
  });

  it('an accuracy goal that cannot be met: exit 1, and the best model is still written', async () => {
    const out = join(tmp, 'goal.onnx');
    const desc = join(tmp, 'unlabelled.json');
    await writeFile(desc, JSON.stringify(CNN_UNLABELLED));
    const r = optimize(
      'quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--samples', '64', '--method', 'minmax',
      '--activation-type', 'int8', '--no-per-channel', '--reduce-range', '--max-accuracy-drop', '0', '--data', desc, '--max-trials', '1', '--latency', 'off',
    );
    expect(r.status, r.stderr).to.equal(1);
    expect(r.stderr, 'not a terminal: plain progress lines only, no error').to.not.match(/error/i);
    expect(r.stdout).to.match(/Accuracy \(top-1 agreement with float, 256 samples\): .* drop \d+\.\d\d pp \(tolerance 0 pp\): NOT met/);
    expect(r.stdout).to.match(/Accuracy goal not met: wrote the best model found to /);
    expect(existsSync(out)).to.equal(true);
    expect((await loadModel(out)).metadata.has(QUANTIZE_METADATA_KEY)).to.equal(true);
  });

  it('--override name=min:max[:type] and --moving-average reach the quantizer; malformed ones are usage errors', async () => {
    expect(overrideFlag('/a/Relu_output_0=0:6')).to.deep.equal({ '/a/Relu_output_0': { min: 0, max: 6 } });
    expect(overrideFlag('x=-1.5:2:int8', { y: { type: 'uint8' } })).to.deep.equal({ y: { type: 'uint8' }, x: { min: -1.5, max: 2, type: 'int8' } });
    expect(overrideFlag('a:b=int8')).to.deep.equal({ 'a:b': { type: 'int8' } });
    expect(overrideFlag('z=:6')).to.deep.equal({ z: { max: 6 } });
    for (const bad of ['=0:1', 'x=', 'x=1', 'x=2:1', 'x=a:1', 'x=0:1:int4', 'x=:']) expect(() => overrideFlag(bad), bad).to.throw(/expected <tensor>=<min>:<max>/);
    const cnn = await loadModel(CNN);
    const relu = cnn.graph.nodes.find((n) => n.opType === 'Relu')!.output().name;
    const out = join(tmp, 'override.int8.onnx');
    const r = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', out, '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--samples', '64', '--latency', 'off', '--override', `${relu}=0:25.5`, '--json');
    expect(r.status, r.stderr).to.equal(0);
    const q = (await loadModel(out)).graph.nodes.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0]!.name === relu)!;
    expect(q.inputs[1]!.initializer!.data()[0]).to.equal(Math.fround(25.5 / 255));
    // --moving-average reaches the recipe; with another method it is a usage error
    const ma = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', join(tmp, 'ma.onnx'), '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--samples', '64', '--latency', 'off', '--moving-average', '--json');
    expect(ma.status, ma.stderr).to.equal(0);
    expect((JSON.parse(ma.stdout) as { report: { resolved: Record<string, unknown> } }).report.resolved).to.deep.include({ method: 'minmax', movingAverage: true });
    const maBad = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', join(tmp, 'never.onnx'), '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--method', 'entropy', '--moving-average');
    expect(maBad.status).to.equal(2);
    expect(maBad.stderr).to.match(/movingAverage applies to method 'minmax' only/);
    const bad = optimize('quantize', 'fixtures/fmnist-cnn.onnx', '-o', join(tmp, 'never.onnx'), '--calibration', 'fixtures/fmnist-test-256/cnn.json', '--override', 'x=2:1');
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/min 2 is above max 1/);
    expect(existsSync(join(tmp, 'never.onnx'))).to.equal(false);
  });

  it('--bits outside weight-only and --data without a goal are usage errors', () => {
    const out = join(tmp, 'usage.onnx');
    expect(optimize('quantize', 'fixtures/fmnist-mlp.onnx', '-o', out, '--bits', '4').stderr).to.match(/--bits applies to --mode weight-only, not static/);
    const r = optimize('quantize', 'fixtures/fmnist-mlp.onnx', '-o', out, '--mode', 'dynamic', '--data', MLP_DATA);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--data is the evaluation set of --max-accuracy-drop/);
    expect(existsSync(out)).to.equal(false);
  });

  it('weight-only 4-bit on the MLP writes a smaller model', () => {
    const out = join(tmp, 'mlp.w4.onnx');
    const r = optimize('quantize', 'fixtures/fmnist-mlp.onnx', '-o', out, '--mode', 'weight-only', '--bits', '4', '--json');
    expect(r.status, r.stderr).to.equal(0);
    const doc = JSON.parse(r.stdout) as { bytes: { ratio: number }; report: { mode: string; latency?: unknown } };
    expect(doc.report.mode).to.equal('weight-only');
    expect(doc.report.latency).to.equal(undefined);
    expect(doc.bytes.ratio).to.be.below(0.5);
  });
});
