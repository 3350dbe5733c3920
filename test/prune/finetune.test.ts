/**
 * Recovering accuracy after pruning (src/prune/finetune.ts, recalibrate.ts) and iterative schedules (prune()):
 *
 * - masks held during fine-tuning: the zero positions after training are exactly those before (and without masks
 *   training does revive them, so the check can fail);
 * - identity BatchNormalization insertion: onnxruntime's outputs unchanged;
 * - recalibration: the pruned model's Conv output moments (measured by onnxruntime) match the original's on the
 *   kept channels;
 * - polynomial schedule: TF's PolynomialDecay values, exact final sparsity for magnitude, the one-shot channel
 *   counts for channels, masks handed to the fine-tuning function; the CLI flags.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../src/eval/datasets.js';
import { loadModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/ir.js';
import { Runner } from '../../src/onnx/runner.js';
import { Tensor } from '../../src/onnx/tensor.js';
import {
  channelMoments,
  finetunePruned,
  insertIdentityBatchNorm,
  planChannels,
  polynomialSparsity,
  prune,
  pruneChannels,
  pruneMagnitude,
  recalibrableConvs,
  type FinetuneInfo,
} from '../../src/prune/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const fixture = (name: string) => loadModel(join(ROOT, 'fixtures', `${name}.onnx`));
const CNN_DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');
const LARGEST = 'classifier.1.weight';
const data = () => loadDataset(CNN_DATA, { inputNames: ['input'] });

/** Zero positions of every Conv/Gemm weight, by name. */
function zeroPositions(model: Model): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const n of model.graph.nodes) {
    if (!['Conv', 'Gemm', 'MatMul'].includes(n.opType) || !n.inputs[1]?.initializer) continue;
    const d = n.inputs[1].initializer.data() as Float32Array;
    out.set(n.inputs[1].name, [...d.keys()].filter((i) => d[i] === 0));
  }
  return out;
}

async function logits(model: Model, x: Tensor): Promise<Float32Array> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    const out = await r.run({ input: x });
    return Object.values(out)[0]!.data as Float32Array;
  } finally {
    await r.release();
  }
}

function images(n: number, seed = 3): Tensor {
  let s = seed;
  const d = Float32Array.from({ length: n * 784 }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 3 - 0.8);
  return Tensor.from('float32', [n, 1, 28, 28], d);
}

describe('prune: fine-tuning and schedules', function () {
  this.timeout(60_000);

  describe('finetunePruned', () => {
    it('holds magnitude masks: the zeros after training are exactly the zeros before', async () => {
      const float = await fixture('fmnist-cnn');
      const p = await pruneMagnitude(float, { sparsity: 0.7 });
      const before = zeroPositions(p.model);
      const ds = await data();
      const held = await finetunePruned(p.model, float, ds, { epochs: 1, batchSize: 32, lr: 2e-3, threads: 1 }, { masks: p.masks! });
      const after = zeroPositions(held.model);
      for (const [name, z] of before) expect(after.get(name), name).to.deep.equal(z);
      // training did move the other weights
      const w0 = p.model.graph.initializers.get(LARGEST)!.initializer!.data() as Float32Array;
      const w1 = held.model.graph.initializers.get(LARGEST)!.initializer!.data() as Float32Array;
      expect(w1.some((x, i) => Math.abs(x - w0[i]!) > 1e-6)).to.equal(true);
      // without masks, the same training revives pruned weights (so the check above could fail)
      const free = await finetunePruned(p.model, float, ds, { epochs: 1, batchSize: 32, lr: 2e-3, threads: 1 });
      const revived = [...before].some(([name, z]) => (zeroPositions(free.model).get(name)?.length ?? 0) < z.length);
      expect(revived).to.equal(true);
    });

    it('inserts BatchNormalization that leaves the outputs unchanged, and folds it back after training', async () => {
      const m = await fixture('fmnist-resnet8');
      const x = images(4);
      const want = await logits(m, x);
      const withBn = await loadModel(await import('../../src/onnx/proto.js').then((p) => p.encodeModel(m)));
      const added = await insertIdentityBatchNorm(withBn, await data(), 128);
      expect(added.length).to.equal(m.graph.nodes.filter((n) => n.opType === 'Conv').length);
      const got = await logits(withBn, x);
      for (let i = 0; i < want.length; i++) expect(got[i]).to.be.closeTo(want[i]!, 1e-3 + 1e-3 * Math.abs(want[i]!));
      const ft = await finetunePruned((await pruneChannels(m, { sparsity: 0.25 })).model, m, await data(), { epochs: 1, batchSize: 64, threads: 1, batchNormSamples: 128 });
      expect(ft.batchNormsInserted).to.be.greaterThan(0);
      expect(ft.model.graph.nodes.filter((n) => n.opType === 'BatchNormalization')).to.have.length(0);
      expect((await logits(ft.model, x)).length).to.equal(40);
    });
  });

  describe('prune() finetune as data', () => {
    it('validates { data, … } and refuses what finetunePruned does not take', async () => {
      const m = await fixture('fmnist-cnn');
      for (const [finetune, re] of [
        [{ epochs: 1 }, /Expected a function .* or \{ data, epochs, … \} for finetune/],
        [{ data: CNN_DATA, epochs: 0 }, /epochs/],
        [{ data: CNN_DATA, warmup: 3 }, /warmup/],
      ] as const) {
        let err: unknown;
        await prune(m, { sparsity: 0.5, finetune: finetune as never }).catch((e) => (err = e));
        expect((err as Error)?.message, JSON.stringify(finetune)).to.match(re);
      }
    });
  });

  describe('recalibration', () => {
    it("gives the pruned model's Conv outputs the original's per-channel mean and spread", async () => {
      const float = await fixture('fmnist-resnet8');
      const ds = await data();
      const groups = await planChannels(float, { sparsity: 0.5 });
      const target = await channelMoments(float, recalibrableConvs(float), ds, 256);
      const stats = async (m: Model) => channelMoments(m, recalibrableConvs(m), ds, 256);
      const on = await stats((await pruneChannels(float, { sparsity: 0.5, calibration: ds, criterion: 'l1', calibrationSamples: 256 })).model);
      const off = await stats((await pruneChannels(float, { sparsity: 0.5, calibration: ds, criterion: 'l1', calibrationSamples: 256, recalibrate: false })).model);
      // the deepest Conv, corrected last: its moments match the original's on the kept channels (same samples)
      const last = [...on.keys()].at(-1)!;
      const lastG = groups.find((gr) => gr.producers.includes(last.name))!;
      const k = [...Array(lastG.channels).keys()].filter((c) => !lastG.remove.includes(c));
      const t = [...target].find(([n]) => n.name === last.name)![1];
      const dev = (m: typeof on) => {
        const mo = [...m].find(([n]) => n.name === last.name)![1];
        return k.reduce((s, o, c) => s + Math.abs(mo.std[c]! - t.std[o]!) + Math.abs(mo.mean[c]! - t.mean[o]!), 0) / k.length;
      };
      expect(dev(on)).to.be.below(1e-3);
      expect(dev(off)).to.be.above(10 * dev(on));
    });
  });

  describe('calibration on a pruned model', () => {
    it("prunes a 30%-pruned ResNet-8 again with calibration (onnxruntime's 'all' level crashed on its 45-channel outputs)", async () => {
      const ds = await data();
      const once = await pruneChannels(await fixture('fmnist-resnet8'), { sparsity: 0.3, calibration: ds, calibrationSamples: 64 });
      const twice = await pruneChannels(once.model, { sparsity: 0.3, calibration: ds, calibrationSamples: 64 });
      expect(twice.report.totals.modelParams[1]).to.be.below(once.report.totals.modelParams[1]);
      expect((await logits(twice.model, images(2))).length).to.equal(20);
    });
  });

  describe('polynomial schedule', () => {
    it("follows TF Model Optimization's PolynomialDecay (power 3)", () => {
      // s_t = s_f + (s_i − s_f)(1 − t/n)^3, computed by hand
      expect(polynomialSparsity(0.8, 1, 4)).to.be.closeTo(0.8 - 0.8 * 0.421875, 1e-12);
      expect(polynomialSparsity(0.8, 2, 4)).to.be.closeTo(0.8 - 0.8 * 0.125, 1e-12);
      expect(polynomialSparsity(0.8, 4, 4)).to.equal(0.8);
      expect(polynomialSparsity(0.9, 1, 2, 0.5)).to.be.closeTo(0.9 - 0.4 * 0.125, 1e-12);
    });

    it('magnitude: steps of rising sparsity, masks handed to fine-tuning, the exact target at the end', async () => {
      const float = await fixture('fmnist-cnn');
      const calls: FinetuneInfo[] = [];
      const zerosSeen: number[] = [];
      const r = await prune(float, {
        sparsity: 0.8,
        schedule: 'polynomial',
        steps: 3,
        finetune: async (pruned, original, info) => {
          expect(original).to.equal(float);
          calls.push(info);
          zerosSeen.push([...info.masks!.values()].reduce((s, m) => s + m.reduce((a, b) => a + b, 0), 0));
          return pruned;
        },
      });
      expect(calls.map((c) => [c.step, c.steps])).to.deep.equal([
        [1, 3],
        [2, 3],
        [3, 3],
      ]);
      expect(zerosSeen[0]).to.be.below(zerosSeen[1]!);
      expect(zerosSeen[1]).to.be.below(zerosSeen[2]!);
      expect(r.report.totals.sparsity).to.be.closeTo(0.8, 1e-4);
      expect(r.report.schedule!.steps.map((s) => s.sparsity)).to.deep.equal([1, 2, 3].map((t) => polynomialSparsity(0.8, t, 3)));
      for (const s of r.report.schedule!.steps) expect(s.achieved).to.be.closeTo(s.sparsity, 1e-4);
    });

    it('channels: several steps end with the channels one shot removes, and the model runs', async () => {
      const float = await fixture('fmnist-resnet8');
      const one = await prune(float, { method: 'channels', sparsity: 0.5 });
      const iter = await prune(float, { method: 'channels', sparsity: 0.5, schedule: 'polynomial', steps: 3 });
      expect(iter.report.totals.channels).to.deep.equal(one.report.totals.channels);
      expect(iter.report.totals.modelParams).to.deep.equal(one.report.totals.modelParams);
      const reached = iter.report.schedule!.steps.map((s) => s.achieved);
      expect(reached[0]).to.be.below(reached[1]!);
      expect(reached[2]).to.be.closeTo(0.5, 0.02);
      expect((await logits(iter.model, images(2))).length).to.equal(20);
    });

    it('CLI: --schedule polynomial --steps N, and --steps alone is refused', () => {
      const dir = mkdtempSync(join(tmpdir(), 'prune-sched-'));
      try {
        const out = join(dir, 'm.onnx');
        const run = (...a: string[]) => spawnSync(process.execPath, [CLI, 'prune', 'fixtures/fmnist-cnn.onnx', '-o', out, ...a], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
        const ok = run('--sparsity', '0.6', '--schedule', 'polynomial', '--steps', '2', '--sparse-storage', 'off');
        expect(ok.status, ok.stderr).to.equal(0);
        expect(ok.stdout).to.match(/Schedule: polynomial decay over 2 prune/);
        const bad = run('--steps', '2');
        expect(bad.status).to.equal(2);
        expect(bad.stderr).to.match(/--steps applies to --schedule polynomial/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
