/**
 * Hint losses in distillation on the Fashion-MNIST fixture teacher and the built-in width-0.25 student, 512
 * training images (the 256-image test slice when Debian's Fashion-MNIST is missing): two epochs with a hint lower
 * the hint's MSE (teacher tensor against adapter output, read from the step graph), well below the same epochs
 * without it; `distill` with hints returns the plain student (no teacher copy, no adapter, the
 * recipe in metadata), deterministically; `--hint` parsing and the CLI end to end.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseHint } from '../../src/cli/commands/distill.js';
import { attachHints, describeTeacher, distill, makeFromSpec, scaleSpec, DISTILL_METADATA_KEY, type HintedModel } from '../../src/distill/index.js';
import { OptionsError } from '../../src/errors.js';
import { loadDataset, type FileDataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import { loadModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/ir.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import type { Tensor } from '../../src/onnx/tensor.js';
import { buildTrainingGraph, HINTS_METADATA_KEY } from '../../src/train/graph.js';
import { train } from '../../src/train/loop.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURES = join(ROOT, 'fixtures');
const FASHION = '/usr/share/datasets/fashion-mnist';
const hasFashionTrain = existsSync(`${FASHION}/train-images-idx3-ubyte.gz`);
const PRE = { layout: 'NCHW' as const, scale: 0.00392156862745098, mean: [0.286], std: [0.353] };
const DESCRIPTOR: IdxDescriptor | string = hasFashionTrain
  ? { format: 'idx', images: `${FASHION}/train-images-idx3-ubyte.gz`, labels: `${FASHION}/train-labels-idx1-ubyte.gz`, input: PRE, limit: 512 }
  : join(FIXTURES, 'fmnist-test-256', 'cnn.json');

/**
 * The hint's MSE over `data` as training sees it (BatchNormalization on batch statistics: in inference mode the
 * running statistics of a 16-step run still lag), read from the step graph's `hint0_mse` output.
 */
async function hintMse(model: Model, hinted: HintedModel, data: FileDataset): Promise<number> {
  const tg = buildTrainingGraph(model, { loss: { useLabels: true, useTeacher: false }, hints: hinted.losses });
  const runner = await Runner.create(tg.model, { threads: 1 });
  let sum = 0;
  let n = 0;
  try {
    for await (const b of data.batches(128)) {
      const feeds: Record<string, RunTensor | Tensor> = { input: b.feeds.input!, labels: { dtype: 'float32', dims: [b.size, 10], data: new Float32Array(b.size * 10).fill(0.1) } };
      for (const p of tg.params) feeds[p.name] = p.init;
      for (const x of tg.buffers) feeds[x.name] = x.init;
      const out = await runner.run(feeds, [tg.hintOutputs[0]!]);
      sum += (out[tg.hintOutputs[0]!]!.data as Float32Array)[0]! * b.size;
      n += b.size;
    }
  } finally {
    await runner.release();
  }
  return sum / n;
}

describe('distill: hint losses', function () {
  this.timeout(300_000);
  let teacher: Model;
  let data: FileDataset;
  const hints = [{ teacher: 'relu2_out', student: 'relu2_out', weight: 0.5 }];
  before(async () => {
    teacher = await loadModel(join(FIXTURES, 'fmnist-teacher.onnx'));
    data = await loadDataset(DESCRIPTOR);
  });

  it('two epochs with a hint lower its MSE, well below the same epochs without it', async () => {
    const student = makeFromSpec(scaleSpec(describeTeacher(teacher), { width: 0.25 }), { seed: 1 });
    const strong = [{ ...hints[0]!, weight: 2 }];
    const hinted = attachHints(student, teacher, strong, { seed: 1 });
    const before = await hintMse(hinted.model, hinted, data);
    const common = { teacher, epochs: 2, batchSize: 32, threads: 1, optimizer: { kind: 'adam' as const, lr: 3e-3 } };
    const withHint = await train(hinted.model, data, common);
    const after = await hintMse(withHint.model, hinted, data);
    // the same run without the hint term: the adapter and teacher copy are dead code, trained by nothing
    const unhinted = attachHints(student, teacher, strong, { seed: 1 });
    unhinted.model.metadata.delete(HINTS_METADATA_KEY);
    const without = await train(unhinted.model, data, common);
    const control = await hintMse(inject(unhinted.model, without.params), hinted, data);
    console.log(`      hint MSE: ${before.toFixed(3)} before, ${after.toFixed(3)} after 2 epochs with the hint, ${control.toFixed(3)} after 2 without`);
    expect(after).to.be.below(0.75 * before);
    expect(after).to.be.below(0.75 * control);
    // the step graph's loss includes the hint: the first epoch's loss is higher with it
    expect(withHint.history[0]!.loss).to.be.above(without.history[0]!.loss);
  });

  it('distill with hints returns the plain student, records the hints, and is deterministic for a seed', async () => {
    const run = () => distill(teacher, { data, studentWidth: 0.25, epochs: 1, batchSize: 64, threads: 1, seed: 3, hints });
    const a = await run();
    const b = await run();
    const plain = makeFromSpec(scaleSpec(describeTeacher(teacher), { width: 0.25 }));
    expect(a.model.graph.nodes.map((n) => n.opType)).to.deep.equal(['Conv', 'Relu', 'MaxPool', 'Conv', 'Relu', 'MaxPool', 'Flatten', 'Gemm', 'Relu', 'Gemm']);
    expect([...a.model.graph.initializers.keys()].some((k) => k.startsWith('hint'))).to.equal(false);
    expect(a.model.metadata.has(HINTS_METADATA_KEY)).to.equal(false);
    expect(a.model.graph.outputs.map((o) => o.name)).to.deep.equal(plain.graph.outputs.map((o) => o.name));
    expect(JSON.parse(a.model.metadata.get(DISTILL_METADATA_KEY)!).hints).to.deep.equal(hints);
    // relu2_out: 16 student channels → 64 teacher channels
    expect(a.report.loss.hints).to.deep.equal([{ teacher: 'relu2_out', student: 'relu2_out', weight: 0.5, adapterParameters: 16 * 64 + 64 }]);
    const bytes = (m: Model) => Buffer.concat([...m.graph.initializers.values()].map((v) => Buffer.from(v.initializer!.bytes())));
    expect(bytes(a.model).equals(bytes(b.model))).to.equal(true);
    const runner = await Runner.create(a.model, { threads: 1 });
    await runner.release();
    // the zod schema checks the options
    await distill(teacher, { data, studentWidth: 0.25, epochs: 1, hints: [{ teacher: 'relu2_out', student: 'relu2_out', weight: -1 }] }).then(
      () => expect.fail('accepted a negative weight'),
      (e: unknown) => expect(e).to.be.instanceOf(OptionsError).with.property('message').that.matches(/hints\.0\.weight/),
    );
  });

  it('--hint teacher=student[:weight] parses, with clear errors', () => {
    expect(parseHint('relu2_out=relu2_out')).to.deep.equal([{ teacher: 'relu2_out', student: 'relu2_out' }]);
    expect(parseHint('a=b:0.25', [{ teacher: 'x', student: 'y' }])).to.deep.equal([
      { teacher: 'x', student: 'y' },
      { teacher: 'a', student: 'b', weight: 0.25 },
    ]);
    // a name with a non-numeric colon part stays whole; a TensorFlow-style name needs an explicit weight
    expect(parseHint('a=ns:b')).to.deep.equal([{ teacher: 'a', student: 'ns:b' }]);
    expect(parseHint('a=conv:0:1')).to.deep.equal([{ teacher: 'a', student: 'conv:0', weight: 1 }]);
    expect(() => parseHint('relu2_out')).to.throw('Expected teacherTensor=studentTensor[:weight] but received "relu2_out".');
    expect(() => parseHint('a=b:0')).to.throw('Expected a positive hint weight but received 0 in "a=b:0".');
  });

  it('optimize distill --hint end to end; a spatial mismatch exits 2 naming both tensors', async function () {
    if (!existsSync(CLI)) this.skip();
    const dir = await mkdtemp(join(tmpdir(), 'onnxpress-hints-'));
    try {
      const out = join(dir, 'student.onnx');
      const base = ['--teacher', join(FIXTURES, 'fmnist-teacher.onnx'), '--student-width', '0.25', '--data', join(FIXTURES, 'fmnist-test-256', 'cnn.json'), '--epochs', '1', '--threads', '1'];
      const ok = spawnSync(process.execPath, [CLI, 'distill', ...base, '--hint', 'relu2_out=relu2_out:0.5', '-o', out, '--json'], { encoding: 'utf8' });
      expect(ok.status, ok.stderr).to.equal(0);
      expect(JSON.parse(ok.stdout).report.loss.hints).to.deep.equal([{ teacher: 'relu2_out', student: 'relu2_out', weight: 0.5, adapterParameters: 1088 }]);
      expect((await loadModel(out)).graph.nodes).to.have.length(10);
      const bad = join(dir, 'bad.onnx');
      const r = spawnSync(process.execPath, [CLI, 'distill', ...base, '--hint', 'relu1_out=relu2_out', '-o', bad], { encoding: 'utf8' });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.contain('Hint teacher "relu1_out" [batch, 32, 28, 28] → student "relu2_out" [batch, 16, 14, 14]: the spatial sizes differ (28×28 vs 14×14)');
      expect(existsSync(bad)).to.equal(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A copy of the hinted model with `params` written in (for the control run, whose adapter never trained). */
function inject(model: Model, params: Map<string, Tensor>): Model {
  for (const [k, t] of params) model.graph.initializers.get(k)!.initializer = t;
  return model;
}
