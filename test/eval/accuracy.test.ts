import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EvaluationError, OptionsError } from '../../src/errors.js';
import { compareOutputs, evaluate, formatEvalResult, type EvalResult } from '../../src/eval/accuracy.js';
import { loadDataset, type Batch, type Dataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import type { DType, TypedArray } from '../../src/onnx/dtype.js';
import { loadModel } from '../../src/onnx/io.js';
import { Model, type Dim } from '../../src/onnx/ir.js';
import { Runner } from '../../src/onnx/runner.js';
import { rejects } from '../helpers/assert.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const FASHION = '/usr/share/datasets/fashion-mnist';
const hasFashion = existsSync(`${FASHION}/t10k-images-idx3-ubyte.gz`) && existsSync(`${FASHION}/t10k-labels-idx1-ubyte.gz`);

interface Counts {
  n: number;
  top1: { correct: number; accuracy: number };
  top5: { correct: number; accuracy: number };
}
interface ModelReference {
  t10k: Counts;
  slice256: Counts;
  logitsFirst4: number[][];
  labelsFirst4: number[];
  predictionsSlice256: number[];
  input: { layout: 'NCHW' | 'flat' };
}
const reference = JSON.parse(readFileSync(`${FIXTURES}reference.json`, 'utf8')) as {
  models: Record<string, ModelReference>;
  dataset: { sliceLabelHistogram: Record<string, number> };
};

/** The full Fashion-MNIST test set with the fixtures' preprocessing (see fixtures/README.md). */
function t10k(layout: 'NCHW' | 'flat'): IdxDescriptor {
  return {
    format: 'idx',
    images: `${FASHION}/t10k-images-idx3-ubyte.gz`,
    labels: `${FASHION}/t10k-labels-idx1-ubyte.gz`,
    input: { layout, scale: 0.00392156862745098, mean: [0.286], std: [0.353] },
  };
}

/** Checks that the per-class numbers and the confusion matrix agree with each other and with the top-1 count. */
function checkConsistent(r: EvalResult): void {
  const n = r.numClasses;
  expect(r.confusion).to.have.length(n);
  let total = 0, diagonal = 0, recallWeighted = 0;
  for (let c = 0; c < n; c++) {
    const row = r.confusion[c]!;
    expect(row).to.have.length(n);
    const support = row.reduce((s, x) => s + x, 0);
    expect(r.perClass[c]!.support).to.equal(support);
    total += support;
    diagonal += row[c]!;
    recallWeighted += r.perClass[c]!.recall * support;
    const predicted = r.confusion.reduce((s, rr) => s + rr[c]!, 0);
    if (predicted) expect(r.perClass[c]!.precision).to.be.closeTo(row[c]! / predicted, 1e-12);
  }
  expect(total).to.equal(r.samples);
  expect(diagonal).to.equal(r.correct.top1);
  // per-class recall, weighted by support, gives back the top-1 count
  expect(Math.round(recallWeighted)).to.equal(r.correct.top1);
  expect(recallWeighted).to.be.closeTo(r.correct.top1, 1e-9);
  expect(r.top1).to.equal(r.correct.top1 / r.samples);
  expect(r.top5).to.equal(r.correct.top5 / r.samples);
}

describe('evaluate: the fixtures against PyTorch (fixtures/reference.json)', function () {
  this.timeout(300_000);
  for (const name of ['cnn', 'mlp'] as const) {
    const file = `fmnist-${name}.onnx`;
    const ref = reference.models[file]!;

    describe(file, () => {
      let model: Model;
      before(async () => {
        model = await loadModel(`${FIXTURES}${file}`);
      });

      it('gets exactly PyTorch’s top-1 and top-5 counts on the full t10k set', async function () {
        if (!hasFashion) this.skip();
        const data = await loadDataset(t10k(ref.input.layout));
        expect(data.size).to.equal(10_000);
        const r = await evaluate(model, data, { batchSize: 500 });
        expect(r.samples).to.equal(ref.t10k.n);
        expect(r.correct.top1).to.equal(ref.t10k.top1.correct);
        expect(r.correct.top5).to.equal(ref.t10k.top5.correct);
        expect(r.top1).to.equal(ref.t10k.top1.accuracy);
        expect(r.top5).to.equal(ref.t10k.top5.accuracy);
        expect(r.nonFinite).to.equal(0);
        checkConsistent(r);
      });

      it('gets PyTorch’s counts and every top-1 prediction on the 256-image slice', async () => {
        const data = await loadDataset(`${FIXTURES}fmnist-test-256/${name}.json`);
        const r = await evaluate(model, data, { predictions: true });
        expect(r.samples).to.equal(256);
        expect(r.correct).to.deep.equal({ top1: ref.slice256.top1.correct, top5: ref.slice256.top5.correct });
        expect(r.predictions).to.deep.equal(ref.predictionsSlice256);
        expect(r.numClasses).to.equal(10);
        expect(r.outputName).to.equal('logits');
        expect(r.ep).to.equal('cpu');
        expect(r.topK.map((t) => t.k)).to.deep.equal([1, 5]);
        const hist = reference.dataset.sliceLabelHistogram;
        expect(r.perClass.map((m) => m.support)).to.deep.equal(Object.keys(hist).sort((a, b) => +a - +b).map((k) => hist[k]));
        checkConsistent(r);
      });

      it('gives the same counts for every batch size, with a Runner, and with a limit', async () => {
        const data = await loadDataset(`${FIXTURES}fmnist-test-256/${name}.json`);
        const runner = await Runner.create(model, { threads: 1 });
        try {
          for (const batchSize of [1, 7, 256, 1000]) {
            const r = await evaluate(runner, data, { batchSize });
            expect(r.correct, `batch ${batchSize}`).to.deep.equal({ top1: ref.slice256.top1.correct, top5: ref.slice256.top5.correct });
          }
          const limited = await evaluate(runner, data, { limit: 100, batchSize: 64, predictions: true });
          expect(limited.samples).to.equal(100);
          expect(limited.predictions).to.deep.equal(ref.predictionsSlice256.slice(0, 100));
        } finally {
          await runner.release();
        }
      });

      it('computes the first 4 logits within 1e-4 of PyTorch’s', async () => {
        const data = await loadDataset(`${FIXTURES}fmnist-test-256/${name}.json`);
        const batch = data.batch(0, 4);
        expect([...batch.labels!]).to.deep.equal(ref.labelsFirst4);
        const runner = await Runner.create(model);
        try {
          const out = await runner.run(batch.feeds);
          const logits = out.logits!;
          expect(logits.dims).to.deep.equal([4, 10]);
          const got = logits.data as Float32Array;
          ref.logitsFirst4.forEach((row, i) => row.forEach((want, j) => expect(got[i * 10 + j]!, `logit [${i}][${j}]`).to.be.closeTo(want, 1e-4)));
        } finally {
          await runner.release();
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Rules, on tiny models and in-memory datasets

/** y = Identity(x): the scores are the data, so ranking rules can be tested exactly. */
function identityModel(shape: Dim[], dtype: DType = 'float32'): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const x = m.graph.declareValue('x');
  x.type = { kind: 'tensor', elemType: dtype, shape };
  m.graph.inputs.push(x);
  const n = m.graph.addNode({ opType: 'Identity', inputs: [x], outputs: ['scores'] });
  n.output().type = { kind: 'tensor', elemType: dtype, shape };
  m.graph.outputs.push(n.output());
  return m;
}

/** A Dataset over rows held in memory (any typed array), to feed values JSON cannot hold (NaN). */
function memoryDataset(rows: number[][], labels: number[] | undefined, dtype: DType = 'float32', key = 'x'): Dataset {
  const width = rows[0]!.length;
  const make = (vals: number[]): TypedArray => (dtype === 'float64' ? Float64Array.from(vals) : Float32Array.from(vals));
  return {
    size: rows.length,
    inputNames: [],
    sampleDims: { [key]: [width] },
    hasLabels: labels !== undefined,
    numClasses: labels ? Math.max(...labels) + 1 : undefined,
    batches(batchSize: number) {
      return (async function* () {
        for (let s = 0; s < rows.length; s += batchSize) {
          const part = rows.slice(s, s + batchSize);
          const b: Batch = { feeds: { [key]: { dtype, dims: [part.length, width], data: make(part.flat()) } }, size: part.length };
          if (labels) b.labels = Int32Array.from(labels.slice(s, s + batchSize));
          yield b;
        }
      })();
    },
  };
}


describe('evaluate: rules', () => {
  // rows and labels chosen so each rule decides one sample
  const rows = [
    [1, 1, 0, 0], // label 0: tie with class 1, lower index wins → rank 0
    [1, 1, 0, 0], // label 1: loses the tie to class 0 → rank 1
    [0, 0, 0, 0], // label 3: all tied → rank 3
    [NaN, 0, 0, 0], // label 0: NaN ranks below every number → rank 3; prediction 1
    [0.5, 2, 2, -1], // label 2: ties with class 1 and loses → rank 1
  ];
  const labels = [0, 1, 3, 0, 2];

  it('ranks equal scores by lower class index and NaN last, for top-k and the confusion matrix alike', async () => {
    const r = await evaluate(identityModel(['n', 4]), memoryDataset(rows, labels), { topK: [4, 1, 2, 3, 2], predictions: true });
    expect(r.predictions).to.deep.equal([0, 0, 0, 1, 1]);
    expect(r.topK).to.deep.equal([
      { k: 1, correct: 1, accuracy: 0.2 },
      { k: 2, correct: 3, accuracy: 0.6 },
      { k: 3, correct: 3, accuracy: 0.6 },
      { k: 4, correct: 5, accuracy: 1 },
    ]);
    expect(r.correct).to.deep.equal({ top1: 1, top5: 5 }); // k clipped to the 4 classes
    expect(r.nonFinite).to.equal(1);
    expect(r.confusion).to.deep.equal([
      [1, 1, 0, 0],
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [1, 0, 0, 0],
    ]);
    checkConsistent(r);
    // class 3 is never predicted: precision 0; macro over the 4 classes present
    expect(r.perClass[3]).to.deep.equal({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(r.perClass[0]!.precision).to.be.closeTo(1 / 3, 1e-12);
    expect(r.perClass[0]!.recall).to.equal(0.5);
    expect(r.macro.recall).to.be.closeTo((0.5 + 0 + 0 + 0) / 4, 1e-12);
    expect(formatEvalResult(r)).to.match(/Top-1\s+20\.00%\s+1 \/ 5/).and.match(/NaN or infinite/);
  });

  it('casts float64 data to a float32 input, and int data too', async () => {
    const r = await evaluate(identityModel(['n', 4]), memoryDataset(rows.slice(0, 3), labels.slice(0, 3), 'float64'));
    expect(r.correct.top1).to.equal(1);
    const json = await loadDataset({ format: 'json', inputs: [[0, 3, 1], [5, 1, 2]], labels: [1, 0], input: { dtype: 'int32' } });
    const ri = await evaluate(identityModel(['n', 3]), json);
    expect(ri.correct.top1).to.equal(2);
  });

  it('feeds integer inputs only whole numbers, and says which value is not', async () => {
    const data = memoryDataset([[0.5, 1]], [0]);
    await rejects(evaluate(identityModel(['n', 2], 'int64'), data), EvaluationError, /model input "x" \(int64\): value 0\.5 at element 0 is not a whole number/);
  });

  it('pads the last batch for a model with a fixed batch size', async () => {
    const r = await evaluate(identityModel([2, 4]), memoryDataset(rows, labels), { batchSize: 64, predictions: true });
    expect(r.batchSize).to.equal(2);
    expect(r.samples).to.equal(5);
    expect(r.predictions).to.deep.equal([0, 0, 0, 1, 1]);
  });

  it('names the input and both shapes when data does not fit, with a hint when only the layout differs', async () => {
    await rejects(
      evaluate(identityModel(['n', 2, 2]), memoryDataset(rows, labels)),
      EvaluationError,
      /^Dataset input "x" does not fit model input "x": the model expects \[n, 2, 2\] float32 but the data is \[N, 4\]; both hold 4 values per sample: set the layout/,
    );
    await rejects(evaluate(identityModel(['n', 3]), memoryDataset(rows, labels)), EvaluationError, /expects \[n, 3\] float32 but the data is \[N, 4\]$/);
  });

  it('refuses a dataset without labels, pointing to compareOutputs', async () => {
    await rejects(evaluate(identityModel(['n', 4]), memoryDataset(rows, undefined)), EvaluationError, /no labels.*compareOutputs/);
  });

  it('lists the outputs when the named one does not exist, and checks labels against the classes', async () => {
    await rejects(evaluate(identityModel(['n', 4]), memoryDataset(rows, labels), { output: 'logits' }), EvaluationError, /no output named "logits" \(one of: "scores"\)/);
    await rejects(evaluate(identityModel(['n', 4]), memoryDataset([[1, 2, 3, 4]], [7])), EvaluationError, /8 classes but output "scores" scores 4/);
  });

  it('validates options', async () => {
    await rejects(evaluate(identityModel(['n', 4]), memoryDataset(rows, labels), { batchSize: 0 }), OptionsError, /positive integer for batchSize but received 0/);
    await rejects(evaluate(identityModel(['n', 4]), memoryDataset(rows, labels), { topK: [0] }), OptionsError, /topK/);
    const runner = await Runner.create(identityModel(['n', 4]));
    try {
      await rejects(evaluate(runner, memoryDataset(rows, labels), { ep: 'webgpu' }), OptionsError, /Runner given was made for "cpu"/);
    } finally {
      await runner.release();
    }
  });

  it('reports progress after every batch', async () => {
    const seen: [number, number][] = [];
    await evaluate(identityModel(['n', 4]), memoryDataset(rows, labels), { batchSize: 2, onProgress: (d, t) => seen.push([d, t]) });
    expect(seen).to.deep.equal([[0, 5], [2, 5], [4, 5], [5, 5]]);
  });
});

describe('compareOutputs', () => {
  it('finds a model identical to itself', async () => {
    const m = identityModel(['n', 4]);
    const data = memoryDataset([[1, 2, 3, 4], [4, 3, 2, 1]], undefined);
    const r = await compareOutputs(m, m, data);
    expect(r).to.include({ samples: 2, top1Agreement: 1, cosine: 1, minCosine: 1, sqnrDb: Infinity, maxAbsDiff: 0, meanAbsDiff: 0 });
  });

  it('measures agreement, cosine and SQNR against the fixture CNN with its weights perturbed', async () => {
    const a = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const b = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(`${FIXTURES}fmnist-test-256/cnn.json`);
    const same = await compareOutputs(a, b, data);
    expect(same.top1Agreement).to.equal(1);
    expect(same.sqnrDb).to.equal(Infinity);
    // scale the last Gemm's bias: outputs shift, most top-1 classes stay
    const { Tensor } = await import('../../src/onnx/tensor.js');
    const gemm = b.graph.nodes.filter((n) => n.opType === 'Gemm').at(-1)!;
    const bias = gemm.input(2);
    const old = bias.initializer!.data<Float32Array>();
    bias.initializer = Tensor.from('float32', bias.initializer!.dims, old.map((x) => x + 0.05));
    const r = await compareOutputs(a, b, data, { batchSize: 100 });
    expect(r.samples).to.equal(256);
    expect(r.top1Agreement).to.be.greaterThan(0.95);
    expect(r.maxAbsDiff).to.be.closeTo(0.05, 1e-5);
    expect(r.cosine).to.be.greaterThan(0.99).and.lessThan(1);
    expect(r.sqnrDb).to.be.greaterThan(20).and.lessThan(Infinity);
  });
});
