import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { OptionsError } from '../../src/errors.js';
import { measureLatency, quantile, timeRuns } from '../../src/eval/latency.js';
import { latencyRowSchema, type LatencyRow } from '../../src/eval/schema.js';
import { loadModel } from '../../src/onnx/io.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MLP = join(ROOT, 'fixtures/fmnist-mlp.onnx');
/** Short budgets: the tests check the shape and consistency of results, never how fast anything is. */
const FAST = { time: 30, maxTime: 30, warmupTime: 5, iterations: 5 };

function available(r: LatencyRow) {
  if (!r.available) throw new Error(`row ${r.ep}/${r.batch}/${r.threads} unavailable: ${r.reason}`);
  return r;
}

describe('eval/latency', function () {
  this.timeout(60_000);

  it('quantile interpolates between order statistics as numpy does', () => {
    // numpy.quantile([1, 2, 3, 4], [0.5, 0.9, 0.99]) = [2.5, 3.7, 3.97]
    expect(quantile([1, 2, 3, 4], 0.5)).to.equal(2.5);
    expect(quantile([1, 2, 3, 4], 0.9)).to.be.closeTo(3.7, 1e-12);
    expect(quantile([1, 2, 3, 4], 0.99)).to.be.closeTo(3.97, 1e-12);
    expect(quantile([7], 0.99)).to.equal(7);
  });

  it('timeRuns: warm-up runs are not counted, then at least `iterations` timed runs', async () => {
    let calls = 0;
    const t = await timeRuns(
      async () => {
        calls++;
      },
      { time: 0, maxTime: 0, iterations: 12, warmupTime: 0, warmupIterations: 4 },
    );
    expect(t.samplesMs.length).to.be.at.least(12);
    expect(calls).to.be.at.least(t.samplesMs.length + 4);
    expect([...t.samplesMs].sort((a, b) => a - b)).to.deep.equal(t.samplesMs);
    expect(t.p50Ms).to.be.at.most(t.p90Ms);
    expect(t.p90Ms).to.be.at.most(t.p99Ms);
    expect(t.peakRssBytes).to.be.greaterThan(0);
  });

  it('timeRuns: an error in the timed function propagates', async () => {
    let calls = 0;
    const failing = async () => {
      if (++calls > 2) throw new Error('boom');
    };
    let caught: unknown;
    await timeRuns(failing, FAST).catch((e: unknown) => (caught = e));
    expect((caught as Error)?.message).to.equal('boom');
  });

  it('one row per ep × batch × threads, in that order, with ordered percentiles and consistent throughput', async () => {
    const progress: [number, number, string][] = [];
    const rows = await measureLatency(MLP, { ep: ['cpu', 'cuda'], batch: [1, 8], threads: [0, 1], ...FAST, onProgress: (d, t, l) => progress.push([d, t, l]) });
    expect(rows.map((r) => `${r.ep}/${r.batch}/${r.threads}`)).to.deep.equal([
      'cpu/1/0',
      'cpu/1/1',
      'cpu/8/0',
      'cpu/8/1',
      'cuda/1/0',
      'cuda/1/1',
      'cuda/8/0',
      'cuda/8/1',
    ]);
    for (const r of rows) latencyRowSchema.parse(r);
    for (const r of rows.filter((x) => x.ep === 'cpu').map(available)) {
      expect(r.p50Ms).to.be.greaterThan(0);
      expect(r.p50Ms).to.be.at.most(r.p90Ms);
      expect(r.p90Ms).to.be.at.most(r.p99Ms);
      expect(r.samples).to.be.at.least(FAST.iterations);
      expect(r.throughput).to.be.closeTo((r.batch * 1000) / r.p50Ms, 1e-9 * r.throughput);
      expect(r.peakRssBytes).to.be.greaterThan(10 * 2 ** 20);
    }
    expect(progress.at(-1)).to.deep.equal([8, 8, 'done']);
    expect(progress.map((p) => p[2])).to.include('cpu batch 8 threads 1');
  });

  it('an unavailable provider (cuda: no GPU files here) is a row with the reason', async function () {
    const rows = await measureLatency(MLP, { ep: ['cuda'], batch: [1], ...FAST });
    expect(rows).to.have.length(1);
    const r = rows[0]!;
    if (r.available) this.skip(); // a machine with CUDA installed
    expect(r).to.deep.include({ available: false, ep: 'cuda', batch: 1, threads: 0 });
    expect(r.reason).to.match(/cuda/i);
    expect(r.reason).not.to.include('\n');
  });

  it('a model with a fixed batch dimension is a row with the reason at another batch size', async () => {
    const model = await loadModel(MLP);
    const input = model.graph.inputs[0]!;
    const t = input.type as { kind: 'tensor'; elemType: 'float32'; shape: (number | string)[] };
    input.type = { ...t, shape: [1, ...t.shape.slice(1)] };
    const out = model.graph.outputs[0]!;
    const o = out.type as { kind: 'tensor'; elemType: 'float32'; shape: (number | string)[] };
    out.type = { ...o, shape: [1, ...o.shape.slice(1)] };
    const rows = await measureLatency(model, { batch: [1, 32], ...FAST });
    expect(rows[0]!.available).to.equal(true);
    expect(rows[1]).to.deep.include({ available: false, ep: 'cpu', batch: 32, threads: 0 });
    expect((rows[1] as { reason: string }).reason).to.match(/fixed batch dimension of 1.*batch 32/);
  });

  it('a model onnxruntime cannot load is a row, not a crash', async () => {
    const model = await loadModel(MLP);
    model.graph.nodes[0]!.opType = 'NoSuchOp';
    const rows = await measureLatency(model, { ...FAST });
    expect(rows).to.have.length(1);
    expect(rows[0]).to.deep.include({ available: false, ep: 'cpu' });
    expect((rows[0] as { reason: string }).reason).to.match(/NoSuchOp/);
  });

  it('bad options are errors naming the option', async () => {
    const model = await loadModel(MLP);
    for (const [options, message] of [
      [{ batch: [0] }, /batch/],
      [{ threads: [-1] }, /threads/],
      [{ ep: ['tpu'] }, /ep.*"tpu"/],
      [{ batch: [] }, /non-empty list.*batch/],
      [{ time: -5 }, /time/],
    ] as const) {
      let caught: unknown;
      await measureLatency(model, options as never).catch((e: unknown) => (caught = e));
      expect(caught, JSON.stringify(options)).to.be.instanceOf(OptionsError);
      expect((caught as Error).message).to.match(message);
    }
  });
});
