/**
 * bench/prune: pruning on the Fashion-MNIST fixtures (CNN, ResNet-8, MobileNet-style), float and pruned side by side
 * in one run, against the "Done means" of the pruning issue:
 *
 * | measure | how | target |
 * |---|---|---|
 * | params | initializer elements, channels 50% / float | ≤ 0.55× |
 * | latency | batch 32, CPU, 1 thread, interleaved rounds, medians: channels 50% / float; magnitude 80% stored / float | ≤ 0.6× (channels) |
 * | top-1 | all 10,000 t10k images: float; channels 50% before and after fine-tuning with the original as teacher | fine-tuned ≥ float − 1 point |
 * | file | magnitude 80%, stored as `prune()` stores it (sparse storage auto: bitmask), serialized bytes / float | raw ≤ 0.4× |
 *
 * The file columns also show gzip, and the other storage forms for comparison: the standard sparse_initializer
 * (int64 COO) and the non-standard compact one.
 *
 * Channels are ranked by activation on 512 training images, with bias compensation and recalibration. Fine-tuning
 * is `prune()`'s own (`finetune: { data, epochs, lr }` → `finetunePruned`: distillation from the original, identity
 * BatchNormalization inserted for training and folded back) on the training set (never the test set).
 *
 *   npm run bench:prune                         # all three models (about 25 min on 2 busy cores)
 *   node dist/bench/prune.js cnn resnet8        # some of them
 *   BENCH_FT_SAMPLES=10000 BENCH_EPOCHS=1 node dist/bench/prune.js   # a quick trial
 *   BENCH_STEPS=3 node dist/bench/prune.js      # polynomial schedule: 3 prune → fine-tune steps (epochs each)
 *   BENCH_FT_SAMPLES=0 node dist/bench/prune.js # no fine-tuning
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { evaluate } from '../src/eval/accuracy.js';
import { loadDataset, type Dataset, type IdxDescriptor } from '../src/eval/datasets.js';
import { loadModel } from '../src/onnx/io.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../src/onnx/proto.js';
import type { Model } from '../src/onnx/ir.js';
import { modelSize, prune, pruneMagnitude, toSparseStorage } from '../src/prune/index.js';
import { timeInterleaved } from '../src/quantize/quantize.js';
import { FASHION, FASHION_PRE, firstRows } from './common.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const FT_SAMPLES = Number(process.env.BENCH_FT_SAMPLES ?? 60000);
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 3);
const LR = process.env.BENCH_LR ? Number(process.env.BENCH_LR) : undefined;
const STEPS = Number(process.env.BENCH_STEPS ?? 1);
const THREADS = 1;

const MODELS = [
  { key: 'cnn', file: 'fmnist-cnn.onnx' },
  { key: 'resnet8', file: 'fmnist-resnet8.onnx' },
  { key: 'mobilenet', file: 'fmnist-mobilenet.onnx' },
];
type Spec = (typeof MODELS)[number];

const PRE = { layout: 'NCHW' as const, ...FASHION_PRE };
const t10k: IdxDescriptor = { format: 'idx', images: `${FASHION}/t10k-images-idx3-ubyte.gz`, labels: `${FASHION}/t10k-labels-idx1-ubyte.gz`, input: PRE };
const train = (n: number, shuffle: number): IdxDescriptor => ({
  format: 'idx',
  images: `${FASHION}/train-images-idx3-ubyte.gz`,
  labels: `${FASHION}/train-labels-idx1-ubyte.gz`,
  input: PRE,
  shuffle,
  limit: n,
});




interface Row {
  spec: Spec;
  paramsRatio: number;
  latency: { float: number; channels: number; ratio: number; stored: number; storedRatio: number };
  top1: { float: number; channels: number; finetuned?: number; magnitude: number };
  finetuneSeconds?: number;
  file: { raw: number; gzip: number; denseGzip: number; int64Raw: number; compactRaw: number; stored: string };
}

async function benchModel(spec: Spec, test: Dataset): Promise<Row> {
  const float = await loadModel(`${ROOT}fixtures/${spec.file}`);
  const calib = await loadDataset(train(512, 7), { inputNames: ['input'] });
  const acc = async (m: Model) => (await evaluate(m, test, { batchSize: 250, threads: 2 })).top1;

  const ch = await prune(float, { method: 'channels', sparsity: 0.5, calibration: calib });
  const [p0, p1] = ch.report.totals.modelParams;

  // magnitude 80%, stored as prune() stores it (auto), and the other forms for comparison
  const mag = await prune(float, { sparsity: 0.8, sparseStorage: 'auto' });
  const dense = (await pruneMagnitude(float, { sparsity: 0.8 })).model;
  const floatSize = modelSize(float);
  const storedSize = modelSize(mag.model);
  const form = (indices: 'int64' | 'compact') => {
    const m = decodeCopy(dense);
    toSparseStorage(m, { mode: 'auto', indices });
    return modelSize(m).raw / floatSize.raw;
  };

  const storedBytes = encodeModel(mag.model);
  const ms = await timeInterleaved(
    [
      { name: 'float', model: float },
      { name: 'channels', model: ch.model },
      { name: 'stored', model: await loadModel(storedBytes) },
    ],
    await firstRows(float, test, 32),
    { ep: 'cpu', threads: THREADS, rounds: ROUNDS, clock: 'wall' },
  );
  const top1 = { float: await acc(float), channels: await acc(ch.model), magnitude: await acc(mag.model) } as Row['top1'];

  let finetuneSeconds: number | undefined;
  if (FT_SAMPLES > 0) {
    const data = await loadDataset(train(FT_SAMPLES, 11), { inputNames: ['input'] });
    const t0 = performance.now();
    const ft = await prune(float, {
      method: 'channels',
      sparsity: 0.5,
      calibration: calib,
      ...(STEPS > 1 ? { schedule: 'polynomial' as const, steps: STEPS } : {}),
      finetune: { data, epochs: EPOCHS, threads: 2, ...(LR ? { lr: LR } : {}) },
    });
    finetuneSeconds = (performance.now() - t0) / 1000;
    top1.finetuned = await acc(ft.model);
  }
  const kinds = mag.report.storage!.weights.map((w) => w.stored);
  return {
    spec,
    paramsRatio: p1 / p0,
    latency: { float: ms.get('float')!, channels: ms.get('channels')!, ratio: ms.get('channels')! / ms.get('float')!, stored: ms.get('stored')!, storedRatio: ms.get('stored')! / ms.get('float')! },
    top1,
    ...(finetuneSeconds !== undefined ? { finetuneSeconds } : {}),
    file: {
      raw: storedSize.raw / floatSize.raw,
      gzip: storedSize.gzip / floatSize.gzip,
      denseGzip: modelSize(dense).gzip / floatSize.gzip,
      int64Raw: form('int64'),
      compactRaw: form('compact'),
      stored: ['bitmask', 'sparse', 'dense'].map((k) => `${kinds.filter((x) => x === k).length} ${k}`).join(', '),
    },
  };
}

/** A copy of a model through its bytes. */
function decodeCopy(m: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(m)));
}

const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');
const pct = (x: number) => (x * 100).toFixed(2);

async function main(): Promise<void> {
  if (!existsSync(`${FASHION}/t10k-images-idx3-ubyte.gz`)) {
    console.error(`bench/prune needs Fashion-MNIST in ${FASHION} (set FMNIST_DIR)`);
    process.exitCode = 2;
    return;
  }
  const wanted = process.argv.slice(2);
  const specs = MODELS.filter((m) => (!wanted.length || wanted.includes(m.key)) && existsSync(`${ROOT}fixtures/${m.file}`));
  const test = await loadDataset(t10k, { inputNames: ['input'] });
  console.log(
    `bench/prune: CPU, ${THREADS} thread, batch 32, ${ROUNDS} interleaved rounds (medians); top-1 on all ${test.size} t10k images; ` +
      (FT_SAMPLES > 0 ? `fine-tuning: prune() finetune, ${EPOCHS} epoch(s)${STEPS > 1 ? ` per step, polynomial schedule over ${STEPS} steps` : ''} on ${FT_SAMPLES} training images${LR ? `, lr ${LR}` : ''}` : 'no fine-tuning'),
  );
  const rows: Row[] = [];
  for (const spec of specs) {
    process.stderr.write(`  ${spec.file} …\n`);
    rows.push(await benchModel(spec, test));
  }
  const table = [['model', 'params', 'latency b32 (ms)', 'top-1 float', 'channels 50%', 'fine-tuned', 'Δ', 'mag 80% top-1', 'file raw', 'file gzip', 'dense gzip', 'int64 raw', 'compact raw', 'stored latency']];
  for (const r of rows) {
    table.push([
      r.spec.key,
      `${r.paramsRatio.toFixed(3)}×`,
      `${r.latency.ratio.toFixed(2)}× (${r.latency.float.toFixed(2)}→${r.latency.channels.toFixed(2)})`,
      pct(r.top1.float),
      pct(r.top1.channels),
      r.top1.finetuned === undefined ? '-' : `${pct(r.top1.finetuned)} (${r.finetuneSeconds!.toFixed(0)} s)`,
      r.top1.finetuned === undefined ? '-' : `${((r.top1.finetuned - r.top1.float) * 100).toFixed(2)}`,
      pct(r.top1.magnitude),
      `${r.file.raw.toFixed(3)}×`,
      `${r.file.gzip.toFixed(3)}×`,
      `${r.file.denseGzip.toFixed(3)}×`,
      `${r.file.int64Raw.toFixed(3)}×`,
      `${r.file.compactRaw.toFixed(3)}×`,
      `${r.latency.storedRatio.toFixed(2)}×`,
    ]);
  }
  const w = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  console.log('\n' + table.map((row) => row.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n'));
  console.log(
    '\nparams, latency: channels 50% / float. file: magnitude 80% as prune() stores it (sparse storage auto) / float, raw and gzipped; dense gzip: the same pruned model stored dense, gzipped / float gzipped; int64 raw: as a standard sparse_initializer (COO, int64 indices); compact raw: sparse_initializer with int16/int32 indices (not standard ONNX). stored latency: the stored magnitude model / float.',
  );
  for (const r of rows) console.log(`  ${r.spec.key}: stored weights ${r.file.stored}`);
  console.log('Unstructured zeros do not make onnxruntime faster (no sparse CPU kernels; stored weights are rebuilt dense at load): only channel pruning cuts latency.');
  console.log('\nTargets:');
  for (const r of rows) {
    const checks = [
      `params ${r.paramsRatio.toFixed(3)}× ≤ 0.55: ${mark(r.paramsRatio <= 0.55)}`,
      `latency ${r.latency.ratio.toFixed(2)}× ≤ 0.6: ${mark(r.latency.ratio <= 0.6)}`,
      r.top1.finetuned === undefined ? 'fine-tuned: not run' : `fine-tuned top-1 ${pct(r.top1.finetuned)} ≥ ${pct(r.top1.float - 0.01)}: ${mark(r.top1.finetuned >= r.top1.float - 0.01)}`,
      `file raw ${r.file.raw.toFixed(3)}× ≤ 0.4: ${mark(r.file.raw <= 0.4)}`,
    ];
    console.log(`  ${r.spec.key.padEnd(10)} ${checks.join('; ')}`);
  }
}

await main();
