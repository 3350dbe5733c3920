/**
 * bench/distill: does distillation beat training on hard labels alone? The same built-in student (width 0.25 of the
 * teacher, the fixture student's shape), the same epochs, optimizer, schedule, batch size, data order and
 * initialization for each seed; one arm learns from the teacher's soft targets mixed with the labels (KD at T = 4,
 * alpha 0.5 by default; BENCH_ALPHA and BENCH_TEMPERATURE change them), the other from the labels alone (alpha 1,
 * no teacher). Top-1 on the full 10,000-image test set, mean over 3 seeds. CPU EP, 1 thread.
 *
 *   npm run bench:distill
 *   BENCH_EPOCHS=10 BENCH_SAMPLES=60000 BENCH_SEEDS=1,2,3 node dist/bench/distill.js
 *   BENCH_ALPHA=0.1 BENCH_TEMPERATURE=4 node dist/bench/distill.js
 *   BENCH_AUGMENT=1 node dist/bench/distill.js     # crop + flip in both arms (the teacher scores augmented images)
 *   BENCH_TEACHER=fixtures/fmnist-cnn.onnx node dist/bench/distill.js   # another teacher
 *
 * Measured on the busy 2-core machine (onnxruntime-node 1.30.0, teacher fixtures/fmnist-teacher.onnx at 92.76%,
 * student 26.7k parameters, seeds 1–3, mean t10k top-1, distilled vs hard labels):
 *
 * | setting | distilled | hard labels | difference |
 * |---|---:|---:|---:|
 * | defaults: 5 epochs, 60k images, T = 4, alpha 0.5 | 90.44% | 90.48% | −0.04 pp (wins 2 of 3 seeds) |
 * | 5 epochs, T = 4, alpha 0.1 | 90.23% | 90.48% | −0.25 pp |
 * | 10 epochs, T = 4, alpha 0.5 | 91.16% | 91.22% | −0.06 pp |
 * | 5 epochs, crop + flip in both arms | 88.79% | 88.83% | −0.04 pp |
 * | 5 epochs, T = 2, alpha 0.5 | 90.71% | 90.48% | +0.24 pp (3 of 3) |
 * | 10 epochs on 10k images, T = 4 | 88.29% | 87.93% | +0.36 pp (3 of 3) |
 *
 * T = 2 was found by looking at these test-set numbers, so its gain is optimistic; at the defaults the difference
 * is within seed noise (±0.3 pp).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countParameters, describeTeacher, makeFromSpec, scaleSpec } from '../src/distill/index.js';
import { evaluate } from '../src/eval/accuracy.js';
import { loadDataset, type IdxDescriptor } from '../src/eval/datasets.js';
import { loadModel } from '../src/onnx/io.js';
import { formatTable } from '../src/onnx/inspect.js';
import { train, type TrainOptionsData } from '../src/train/loop.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FASHION = process.env.FMNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const TEACHER = process.env.BENCH_TEACHER ?? join(ROOT, 'fixtures', 'fmnist-teacher.onnx');
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 5);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 60_000);
const SEEDS = (process.env.BENCH_SEEDS ?? '1,2,3').split(',').map(Number);
const WIDTH = Number(process.env.BENCH_WIDTH ?? 0.25);
const ALPHA = Number(process.env.BENCH_ALPHA ?? 0.5);
const TEMPERATURE = Number(process.env.BENCH_TEMPERATURE ?? 4);
/** Random crop (padding 2) and flip in both arms; the teacher then scores each augmented batch. */
const AUGMENT = process.env.BENCH_AUGMENT === '1';
const PRE = { layout: 'NCHW' as const, scale: 0.00392156862745098, mean: [0.286], std: [0.353] };

function idx(split: 'train' | 't10k', limit?: number): IdxDescriptor {
  return { format: 'idx', images: `${FASHION}/${split}-images-idx3-ubyte.gz`, labels: `${FASHION}/${split}-labels-idx1-ubyte.gz`, input: PRE, ...(limit ? { limit } : {}) };
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

async function main(): Promise<number> {
  if (!existsSync(TEACHER)) {
    console.error(`No teacher at ${TEACHER}: run \`node dist/fixtures/make_distill_fixtures.js\` first, or set BENCH_TEACHER`);
    return 2;
  }
  const teacher = await loadModel(TEACHER);
  const spec = scaleSpec(describeTeacher(teacher), { width: WIDTH });
  const data = await loadDataset(idx('train', SAMPLES));
  const test = await loadDataset(idx('t10k'));
  const common: TrainOptionsData = {
    epochs: EPOCHS,
    batchSize: 128,
    optimizer: { kind: 'adam', lr: 3e-3, schedule: { kind: 'cosine', warmupSteps: 100 } },
    threads: 1,
    ...(AUGMENT ? { augment: { cropPadding: 2, flip: true } } : {}),
  };
  console.log(`teacher ${TEACHER}: ${countParameters(teacher)} parameters, test top-1 ${pct((await evaluate(teacher, test, { batchSize: 500, threads: 1 })).top1)}`);
  console.log(`student width ${WIDTH}: ${countParameters(makeFromSpec(spec))} parameters; ${EPOCHS} epochs on ${data.size} training images; seeds ${SEEDS.join(', ')}`);
  console.log(`distilled: KD at T = ${TEMPERATURE} + CE with alpha ${ALPHA}; hard labels: CE alone (alpha 1)${AUGMENT ? '; both with random crop (padding 2) and flip' : ''}`);
  const rows: string[][] = [['seed', 'distilled', 'hard labels', 'difference', 'seconds (KD / CE)']];
  const kd: number[] = [];
  const ce: number[] = [];
  for (const seed of SEEDS) {
    const student = makeFromSpec(spec, { seed });
    let t0 = Date.now();
    const a = await train(student, data, { ...common, seed, teacher, temperature: TEMPERATURE, alpha: ALPHA });
    const kdSeconds = (Date.now() - t0) / 1000;
    t0 = Date.now();
    const b = await train(student, data, { ...common, seed, alpha: 1 });
    const ceSeconds = (Date.now() - t0) / 1000;
    const ta = (await evaluate(a.model, test, { batchSize: 500, threads: 1 })).top1;
    const tb = (await evaluate(b.model, test, { batchSize: 500, threads: 1 })).top1;
    kd.push(ta);
    ce.push(tb);
    rows.push([String(seed), pct(ta), pct(tb), `${((ta - tb) * 100).toFixed(2)} pp`, `${kdSeconds.toFixed(0)} / ${ceSeconds.toFixed(0)}`]);
    console.log(`seed ${seed}: distilled ${pct(ta)}, hard labels ${pct(tb)}`);
  }
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  rows.push(['mean', pct(mean(kd)), pct(mean(ce)), `${((mean(kd) - mean(ce)) * 100).toFixed(2)} pp`, '']);
  console.log(`\n${formatTable(rows, { right: [1, 2, 3, 4] })}`);
  console.log(mean(kd) > mean(ce) ? '\ndistillation wins' : '\ndistillation does NOT win here');
  return 0;
}

process.exitCode = await main();
