/**
 * Distillation and the training loop on small slices (1–2 epochs, a few hundred samples): the built-in student
 * family, KD raising agreement with the teacher, determinism for a seed, checkpoint → resume equal to an
 * uninterrupted run, pure distillation without labels, early stopping, the builder's error for an op without a
 * gradient rule, and the CLI end to end.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  countParameters,
  describeTeacher,
  distill,
  distillPass,
  makeFromSpec,
  makeMlp,
  parameterCount,
  scaleSpec,
  DISTILL_METADATA_KEY,
  type CnnSpec,
} from '../../src/distill/index.js';
import { GraphError, LoadError, OptionsError, PassError } from '../../src/errors.js';
import { compareOutputs, evaluate } from '../../src/eval/accuracy.js';
import { loadDataset, type Batch, type Dataset, type FileDataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import { loadModel } from '../../src/onnx/io.js';
import type { Model } from '../../src/onnx/ir.js';
import { Runner } from '../../src/onnx/runner.js';
import { optionsJsonSchema } from '../../src/pass.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/train/checkpoint.js';
import { train, type TrainState } from '../../src/train/loop.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURES = join(ROOT, 'fixtures');
const FASHION = '/usr/share/datasets/fashion-mnist';
const hasFashionTrain = existsSync(`${FASHION}/train-images-idx3-ubyte.gz`) && existsSync(`${FASHION}/train-labels-idx1-ubyte.gz`);
const PRE = { scale: 0.00392156862745098, mean: [0.286], std: [0.353] };

/** `limit` training images (the test slice when Debian's Fashion-MNIST is not installed). */
function trainSlice(layout: 'NCHW' | 'flat', limit: number): Promise<FileDataset> {
  if (!hasFashionTrain) return loadDataset(join(FIXTURES, 'fmnist-test-256', layout === 'NCHW' ? 'cnn.json' : 'mlp.json'));
  const d: IdxDescriptor = { format: 'idx', images: `${FASHION}/train-images-idx3-ubyte.gz`, labels: `${FASHION}/train-labels-idx1-ubyte.gz`, input: { layout, ...PRE }, limit };
  return loadDataset(d);
}

/** The same samples without labels, and without random access (exercises the in-memory path of the loop). */
function unlabelled(d: Dataset): Dataset {
  return {
    size: d.size,
    inputNames: d.inputNames,
    sampleDims: d.sampleDims,
    hasLabels: false,
    batches(n: number) {
      const it = d.batches(n);
      return (async function* () {
        for await (const b of it) yield { feeds: b.feeds, size: b.size } satisfies Batch;
      })();
    },
  };
}

function weightsOf(m: Model): Record<string, number[]> {
  return Object.fromEntries([...m.graph.initializers].map(([k, v]) => [k, Array.from(v.initializer!.data<Float32Array>())]));
}

function bytesOf(m: Model): Buffer {
  return Buffer.concat([...m.graph.initializers.values()].map((v) => Buffer.from(v.initializer!.bytes())));
}

describe('distill', function () {
  this.timeout(600_000);
  let cnn: Model;
  let slice: FileDataset;
  let train512: FileDataset;
  before(async () => {
    cnn = await loadModel(join(FIXTURES, 'fmnist-cnn.onnx'));
    slice = await loadDataset(join(FIXTURES, 'fmnist-test-256', 'cnn.json'));
    train512 = await trainSlice('NCHW', 512);
  });

  describe('the built-in student family', () => {
    it('reads the fixture CNN and MLP and scales them (input channels and classes kept)', async () => {
      const spec = describeTeacher(cnn) as CnnSpec;
      expect(spec.kind).to.equal('cnn');
      expect(spec.input).to.deep.equal([1, 28, 28]);
      expect(spec.blocks.map((b) => [b.channels, b.batchNorm, b.pools.length])).to.deep.equal([
        [16, true, 1],
        [32, true, 1],
      ]);
      expect(spec.hidden).to.deep.equal([64]);
      expect(spec.classes).to.equal(10);
      const small = scaleSpec(spec, { width: 0.25 }) as CnnSpec;
      expect(small.blocks.map((b) => b.channels)).to.deep.equal([4, 8]);
      expect(small.hidden).to.deep.equal([16]);
      const student = makeFromSpec(small, { seed: 3 });
      expect(countParameters(student)).to.equal(parameterCount(small));
      expect(countParameters(student) * 10).to.be.below(countParameters(cnn));
      // depth: one block keeps both pools (same head input size); two extra blocks repeat convs without pools
      const shallow = scaleSpec(spec, { depth: 0.5 }) as CnnSpec;
      expect(shallow.blocks.map((b) => [b.channels, b.pools.length])).to.deep.equal([[16, 2]]);
      const deep = scaleSpec(spec, { depth: 2 }) as CnnSpec;
      expect(deep.blocks.map((b) => [b.channels, b.pools.length])).to.deep.equal([
        [16, 0],
        [16, 1],
        [32, 0],
        [32, 1],
      ]);
      const mlp = describeTeacher(await loadModel(join(FIXTURES, 'fmnist-mlp.onnx')));
      expect(mlp).to.deep.equal({ kind: 'mlp', input: 784, hidden: [128], classes: 10 });
      expect(scaleSpec(mlp, { width: 0.5, depth: 2 })).to.deep.equal({ kind: 'mlp', input: 784, hidden: [64, 64], classes: 10 });
    });

    it('refuses a teacher outside the family, naming the node', async () => {
      const resnet = await loadModel(join(FIXTURES, 'fmnist-resnet8.onnx'));
      expect(() => describeTeacher(resnet)).to.throw(PassError, /not a plain CNN.*read by 2 nodes|not a plain CNN.*is a (Add|GlobalAveragePool)/);
    });

    it('the pass returns a new model and its options are one JSON-representable schema', () => {
      expect(distillPass.inPlace).to.equal(false);
      expect(distillPass.name).to.equal('distill');
      const schema = optionsJsonSchema(distillPass) as { properties: Record<string, unknown> };
      expect(Object.keys(schema.properties)).to.include.members(['data', 'student', 'studentWidth', 'epochs', 'temperature', 'alpha', 'lr', 'optimizer', 'seed']);
    });
  });

  it('a 1-epoch KD run of a width-0.25 student raises its top-1 agreement with the teacher', async () => {
    const untrained = makeFromSpec(scaleSpec(describeTeacher(cnn), { width: 0.25 }), { seed: 0 });
    const before = await compareOutputs(untrained, cnn, slice, { threads: 1 });
    const r = await distill(cnn, { data: train512, studentWidth: 0.25, epochs: 1, batchSize: 32, lr: 3e-3, seed: 0, threads: 1 });
    const after = await compareOutputs(r.model, cnn, slice, { threads: 1 });
    expect(after.top1Agreement).to.be.above(before.top1Agreement + 0.15);
    expect(r.report.loss).to.deep.equal({ temperature: 2, alpha: 0.5, useLabels: true, useTeacher: true });
    // inference form: BatchNormalization folded, recipe in metadata
    expect(r.model.graph.nodes.map((n) => n.opType)).to.not.include('BatchNormalization');
    const recipe = JSON.parse(r.model.metadata.get(DISTILL_METADATA_KEY)!) as Record<string, unknown>;
    expect(recipe).to.include({ studentWidth: 0.25, epochs: 1, batchSize: 32, temperature: 2, alpha: 0.5 });
  });

  it('is deterministic for a seed (CPU, 1 thread): two runs give byte-identical weights', async () => {
    const run = () =>
      distill(cnn, { data: train512, studentWidth: 0.25, epochs: 1, batchSize: 64, seed: 7, threads: 1, augment: { cropPadding: 2, flip: true } });
    const [a, b] = [await run(), await run()];
    expect(bytesOf(a.model).equals(bytesOf(b.model))).to.equal(true);
    const c = await distill(cnn, { data: train512, studentWidth: 0.25, epochs: 1, batchSize: 64, seed: 8, threads: 1, augment: { cropPadding: 2, flip: true } });
    expect(bytesOf(c.model).equals(bytesOf(a.model))).to.equal(false);
  });

  it('checkpoint after epoch 1 → resume gives the same final weights as an uninterrupted run', async () => {
    const student = makeFromSpec(scaleSpec(describeTeacher(cnn), { width: 0.25 }), { seed: 1 });
    const data = await trainSlice('NCHW', 256);
    const options = { teacher: cnn, epochs: 2, batchSize: 64, seed: 3, threads: 1, augment: { flip: true }, optimizer: { kind: 'sgd' as const, lr: 0.05, schedule: { kind: 'cosine' as const } } };
    let saved: Uint8Array | undefined;
    const straight = await train(student, data, {
      ...options,
      onCheckpoint: (s) => {
        if (s.epoch === 1) saved = encodeCheckpoint(s);
      },
    });
    const state = decodeCheckpoint<TrainState>(saved!);
    expect(state.epoch).to.equal(1);
    const resumed = await train(student, data, { ...options, resumeFrom: state });
    const losses = (h: typeof straight.history) => h.map((e) => [e.epoch, e.loss, e.lr]);
    expect(losses(resumed.history)).to.deep.equal(losses(straight.history));
    expect(weightsOf(resumed.model)).to.deep.equal(weightsOf(straight.model));
    // a checkpoint of another run is refused
    try {
      await train(student, data, { ...options, seed: 4, resumeFrom: state });
      expect.fail('resumed from a checkpoint of another run');
    } catch (e) {
      expect(e).to.be.instanceOf(OptionsError);
      expect((e as Error).message).to.match(/different run/);
    }
    expect(() => decodeCheckpoint(new Uint8Array([1, 2, 3]), 'x.ckpt')).to.throw(LoadError, /x\.ckpt is not an onnxpress training checkpoint/);
  });

  it('distills without labels (pure KD) from data without random access', async () => {
    const mlp = await loadModel(join(FIXTURES, 'fmnist-mlp.onnx'));
    const data = unlabelled(await trainSlice('flat', 256));
    const r = await distill(mlp, { data, studentWidth: 0.25, epochs: 1, batchSize: 32, lr: 3e-3, threads: 1 });
    expect(r.report.loss.useLabels).to.equal(false);
    expect(r.report.loss.alpha).to.equal(0);
    expect(r.notes.join()).to.match(/pure distillation/);
    const val = await loadDataset(join(FIXTURES, 'fmnist-test-256', 'mlp.json'));
    expect((await compareOutputs(r.model, mlp, val, { threads: 1 })).top1Agreement).to.be.above(0.3);
  });

  it('stops early after `patience` epochs without validation gain and keeps the best epoch', async () => {
    const r = await distill(cnn, {
      data: await trainSlice('NCHW', 128),
      val: slice,
      studentWidth: 0.25,
      epochs: 6,
      batchSize: 64,
      lr: 1e-12, // nothing moves, so nothing improves
      batchNorm: 'frozen',
      patience: 1,
      threads: 1,
    });
    expect(r.report.stoppedEarly).to.equal(true);
    expect(r.history.map((h) => h.epoch)).to.deep.equal([1, 2]);
    expect(r.report.epoch).to.equal(1);
    expect(r.report.student.valTop1).to.be.a('number');
  });

  it("a student with an op that has no gradient rule gets the builder's error naming the node", async () => {
    const student = makeMlp({ kind: 'mlp', input: 784, hidden: [16], classes: 10 });
    student.graph.nodes.find((n) => n.opType === 'Relu')!.opType = 'Elu';
    const data = await trainSlice('flat', 64);
    try {
      await distill(await loadModel(join(FIXTURES, 'fmnist-mlp.onnx')), { data, student, epochs: 1 });
      expect.fail('trained through Elu');
    } catch (e) {
      expect(e).to.be.instanceOf(GraphError);
      expect((e as Error).message).to.match(/no gradient rule for 1 node: node "fc1_relu" \(Elu\)/);
    }
  });

  it('rejects bad options with messages that name the field', async () => {
    await expectReject(distill(cnn, { data: slice, studentWidth: 0.25, student: cnn }), OptionsError, /either a student model or studentWidth/);
    await expectReject(distill(cnn, { data: slice, alpha: 2 }), OptionsError, /alpha/);
    await expectReject(distill(cnn, { data: 'train.json' as unknown as Dataset }), OptionsError, /data: Expected a Dataset/);
    const mlp = await loadModel(join(FIXTURES, 'fmnist-mlp.onnx'));
    const flat = await loadDataset(join(FIXTURES, 'fmnist-test-256', 'mlp.json'));
    await expectReject(distill(mlp, { data: flat, epochs: 1, augment: { cropPadding: 2 } }), OptionsError, /Augmentation \(crop padding, flip\) needs image inputs shaped \[C, H, W\]; the training data's are "input" \[784\]/);
  });

  describe('the distillation fixtures', () => {
    const ref = JSON.parse(readFileSync(join(FIXTURES, 'distill-reference.json'), 'utf8')) as {
      teacher: { parameters: number; test: { top1: { correct: number } } };
      student: { parameters: number; test: { top1: { correct: number } } };
    };
    it('the student has ≤ 1/10 of the teacher\'s parameters and carries its recipe', async () => {
      const teacher = await loadModel(join(FIXTURES, 'fmnist-teacher.onnx'));
      const student = await loadModel(join(FIXTURES, 'fmnist-student.onnx'));
      expect(countParameters(teacher)).to.equal(ref.teacher.parameters);
      expect(countParameters(student)).to.equal(ref.student.parameters);
      expect(countParameters(student) * 10).to.be.at.most(countParameters(teacher));
      expect(JSON.parse(student.metadata.get(DISTILL_METADATA_KEY)!)).to.include({ studentWidth: 0.25, temperature: 4, alpha: 0.5 });
    });
    it('the measured t10k top-1 counts reproduce (teacher ≥ 92%)', async function () {
      if (!existsSync(`${FASHION}/t10k-images-idx3-ubyte.gz`)) this.skip();
      const test = await loadDataset({ format: 'idx', images: `${FASHION}/t10k-images-idx3-ubyte.gz`, labels: `${FASHION}/t10k-labels-idx1-ubyte.gz`, input: { layout: 'NCHW', ...PRE } });
      const t = await evaluate(await loadModel(join(FIXTURES, 'fmnist-teacher.onnx')), test, { batchSize: 500, threads: 1 });
      const s = await evaluate(await loadModel(join(FIXTURES, 'fmnist-student.onnx')), test, { batchSize: 500, threads: 1 });
      expect(t.correct.top1).to.equal(ref.teacher.test.top1.correct);
      expect(s.correct.top1).to.equal(ref.student.test.top1.correct);
      expect(t.top1).to.be.at.least(0.92);
    });
  });

  describe('CLI', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'onnxpress-distill-'));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const optimize = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });

    it('distills end to end: exit 0, a model onnxruntime runs, metadata_props, a checkpoint that resumes', async () => {
      const out = join(dir, 'student.onnx');
      const ckpt = join(dir, 'run.ckpt');
      const args = ['distill', '--teacher', 'fixtures/fmnist-cnn.onnx', '--student-width', '0.25', '--data', 'fixtures/fmnist-test-256/cnn.json', '--val', 'fixtures/fmnist-test-256/cnn.json'];
      const r = optimize(...args, '--epochs', '1', '--batch', '64', '--threads', '1', '--seed', '5', '--checkpoint', ckpt, '-o', out, '--json');
      expect(r.status, r.stderr).to.equal(0);
      const doc = JSON.parse(r.stdout) as { output: string; report: { epochs: number; student: { parameters: number; valTop1: number } } };
      expect(doc.output).to.equal(out);
      expect(doc.report.epochs).to.equal(1);
      expect(existsSync(ckpt)).to.equal(true);
      const model = await loadModel(out);
      expect(JSON.parse(model.metadata.get(DISTILL_METADATA_KEY)!)).to.include({ studentWidth: 0.25, epochs: 1, seed: 5 });
      const runner = await Runner.create(out, { threads: 1 });
      const y = await runner.run({ input: { dtype: 'float32', dims: [2, 1, 28, 28], data: new Float32Array(2 * 784) } });
      expect(y.logits!.dims).to.deep.equal([2, 10]);
      await runner.release();
      // resume to 2 epochs from the checkpoint of epoch 1
      const out2 = join(dir, 'student2.onnx');
      const r2 = optimize(...args, '--epochs', '2', '--batch', '64', '--threads', '1', '--seed', '5', '--resume', ckpt, '-o', out2, '--json');
      expect(r2.status, r2.stderr).to.equal(0);
      expect((JSON.parse(r2.stdout) as { report: { history: unknown[] } }).report.history).to.have.length(2);
    });

    it('bad arguments exit 2 and leave no output', () => {
      const out = join(dir, 'bad.onnx');
      const base = ['distill', '--teacher', 'fixtures/fmnist-cnn.onnx', '--data', 'fixtures/fmnist-test-256/cnn.json', '-o', out];
      const cases: [string[], RegExp][] = [
        [[], /--student <model.onnx> or --student-width/],
        [['--student-width', '0.25', '--alpha', '2'], /alpha/],
        [['--student-width', '-1'], /student-width/],
        [['--student', 'fixtures/fmnist-mlp.onnx', '--student-width', '0.5'], /either --student or --student-width/],
        [['--student-width', '0.25', '--resume', join(dir, 'nope.ckpt')], /Checkpoint not found/],
        [['--student-width', '0.25', '--teacher', 'fixtures/fmnist-resnet8.onnx'], /not a plain CNN/],
        [['--student-width', '0.25', '--epochs', '0'], /epochs/],
      ];
      for (const [extra, message] of cases) {
        const r = optimize(...base, ...extra);
        expect(r.status, `${extra.join(' ')}: ${r.stderr}`).to.equal(2);
        expect(r.stderr, extra.join(' ')).to.match(message);
        expect(existsSync(out), extra.join(' ')).to.equal(false);
      }
    });
  });
});

async function expectReject(p: Promise<unknown>, type: new (...a: never[]) => Error, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(type);
    expect((e as Error).message).to.match(message);
    return;
  }
  expect.fail(`expected a ${type.name} matching ${message}`);
}

