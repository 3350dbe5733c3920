/**
 * bench/distill: does distillation beat training on hard labels alone? The same built-in student (width 0.25 of the
 * teacher, the fixture student's shape), the same epochs, optimizer, schedule, batch size, data, data order,
 * augmentation and initialization for each seed; one arm learns from the teacher's soft targets mixed with the
 * labels (KD at T = 2, alpha 0.5 by default — `distill`'s defaults; BENCH_TEMPERATURE and BENCH_ALPHA change them),
 * the other from the labels alone (alpha 1, no teacher). Top-1 on the full 10,000-image test set per seed, their
 * mean, and the spread of the per-seed differences. CPU EP, 1 thread.
 *
 *   npm run bench:distill
 *   BENCH_EPOCHS=10 BENCH_SAMPLES=60000 BENCH_SEEDS=1,2,3 node dist/bench/distill.js
 *   BENCH_ALPHA=0.1 BENCH_TEMPERATURE=4 node dist/bench/distill.js
 *   BENCH_AUGMENT=1 node dist/bench/distill.js     # crop + flip in both arms (the teacher scores augmented images)
 *   BENCH_HINTS=relu2_out=relu2_out:1 node dist/bench/distill.js   # add a hint loss (as --hint) to the distilled arm
 *   BENCH_ARMS=kd BENCH_SEEDS=4,5,6 node dist/bench/distill.js     # one arm only, for trials
 *   BENCH_TEACHER=fixtures/fmnist-cnn.onnx node dist/bench/distill.js   # another teacher
 *
 * Measured on the busy 2-core machine (onnxruntime-node 1.30.0, teacher fixtures/fmnist-teacher.onnx at 92.76%,
 * student 26.7k parameters, 60k training images, t10k top-1), `npm run bench:distill` at its defaults (T = 2,
 * alpha 0.5, 5 epochs, seeds 1–3):
 *
 * | seed | distilled | hard labels | difference |
 * |---|---:|---:|---:|
 * | 1 | 90.57% | 90.04% | +0.53 pp |
 * | 2 | 90.97% | 90.93% | +0.04 pp |
 * | 3 | 90.60% | 90.46% | +0.14 pp |
 * | mean | 90.71% | 90.48% | +0.24 pp (sd of the differences 0.26 pp; wins 3 of 3) |
 *
 * The same defaults on seeds 4–6 (chosen after seeds 1–3, so an out-of-sample check of T = 2): 90.89 / 90.61 /
 * 90.48% vs 90.43 / 90.76 / 90.22%, +0.19 pp mean, wins 2 of 3. Over the six seeds: +0.21 pp, sd 0.26 pp, 5 of 6.
 * Other settings (seeds 1–3 unless said; mean distilled vs hard labels):
 *
 * | setting | distilled | hard labels | difference |
 * |---|---:|---:|---:|
 * | 5 epochs, T = 4, alpha 0.5 (the old default) | 90.44% | 90.48% | −0.04 pp (wins 2 of 3) |
 * | 5 epochs, T = 4, alpha 0.1 | 90.23% | 90.48% | −0.25 pp |
 * | 10 epochs, T = 4, alpha 0.5 | 91.16% | 91.22% | −0.06 pp |
 * | 10 epochs, T = 2, alpha 0.5 (per seed 91.36 / 91.53 / 91.45 vs 91.15 / 91.41 / 91.10) | 91.45% | 91.22% | +0.23 pp (sd 0.12 pp; 3 of 3) |
 * | 5 epochs, T = 4, crop + flip in both arms | 88.79% | 88.83% | −0.04 pp |
 * | 10 epochs on 10k images, T = 4 | 88.29% | 87.93% | +0.36 pp (3 of 3) |
 * | 5 epochs, T = 2 + hint relu2_out→relu2_out weight 1, seeds 4–5 | 90.79% | 90.60% | +0.19 pp (T = 2 alone: +0.16 pp on these seeds; ~3× slower) |
 *
 * Why T = 2: Hinton et al. (2015, §3) report that a student much too small for all of the teacher's knowledge
 * does best at intermediate temperatures, and this one has 6% of the teacher's parameters; paired on the same
 * seeds, T = 2 beat T = 4 by 0.27 pp. The choice was made on test-set numbers (there is no separate selection
 * split here), which is why seeds 4–6 were run afterwards. The gain is small next to the seed spread: a
 * 2.3-point-better teacher leaves little to transfer when all 60k labels are there; with fewer labels
 * (10k images) distillation gains more.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachHints, countParameters, describeTeacher, makeFromSpec, scaleSpec, type HintSpec } from '../src/distill/index.js';
import { parseHint } from '../src/cli/commands/distill.js';
import { evaluate } from '../src/eval/accuracy.js';
import { loadDataset, type IdxDescriptor } from '../src/eval/datasets.js';
import { loadModel } from '../src/onnx/io.js';
import { formatTable } from '../src/onnx/inspect.js';
import { inferenceModel } from '../src/train/graph.js';
import { train, type TrainOptionsData } from '../src/train/loop.js';
import type { Model } from '../src/onnx/ir.js';
import type { Tensor } from '../src/onnx/tensor.js';
import { FASHION, FASHION_PRE } from './common.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TEACHER = process.env.BENCH_TEACHER ?? join(ROOT, 'fixtures', 'fmnist-teacher.onnx');
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 5);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 60_000);
const SEEDS = (process.env.BENCH_SEEDS ?? '1,2,3').split(',').map(Number);
const WIDTH = Number(process.env.BENCH_WIDTH ?? 0.25);
const ALPHA = Number(process.env.BENCH_ALPHA ?? 0.5);
const TEMPERATURE = Number(process.env.BENCH_TEMPERATURE ?? 2);
/** Random crop (padding 2) and flip in both arms; the teacher then scores each augmented batch. */
const AUGMENT = process.env.BENCH_AUGMENT === '1';
/** Hint losses of the distilled arm, `teacher=student[:weight]` separated by commas (as `--hint`); `none` for none. */
const HINTS: HintSpec[] = (process.env.BENCH_HINTS ?? 'none') === 'none' ? [] : process.env.BENCH_HINTS!.split(',').reduce<HintSpec[]>((acc, h) => parseHint(h, acc), []);
/** Which arms to run (`kd`, `ce` or both), for trials: a missing arm prints as "-". */
const ARMS = new Set((process.env.BENCH_ARMS ?? 'kd,ce').split(','));
const PRE = { layout: 'NCHW' as const, ...FASHION_PRE };

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
  const hintText = HINTS.map((h) => ` + ${h.weight ?? 1}·hint ${h.teacher}→${h.student}`).join('');
  console.log(`distilled: KD at T = ${TEMPERATURE} + CE with alpha ${ALPHA}${hintText}; hard labels: CE alone (alpha 1)${AUGMENT ? '; both with random crop (padding 2) and flip' : ''}`);
  const rows: string[][] = [['seed', 'distilled', 'hard labels', 'difference', 'seconds (KD / CE)']];
  const kd: number[] = [];
  const ce: number[] = [];
  const own = (student: Model, m: Map<string, Tensor>) => new Map([...m].filter(([k]) => student.graph.initializers.has(k)));
  const diffs: number[] = [];
  for (const seed of SEEDS) {
    const student = makeFromSpec(spec, { seed });
    let t0 = Date.now();
    let ta = NaN;
    if (ARMS.has('kd')) {
      // hints: the student trains extended with the teacher's layers and the adapters; only its own weights are kept
      const hinted = HINTS.length ? attachHints(student, teacher, HINTS, { seed }) : undefined;
      const a = await train(hinted?.model ?? student, data, { ...common, seed, teacher, temperature: TEMPERATURE, alpha: ALPHA });
      const model = hinted ? inferenceModel(student, own(student, a.params), own(student, a.buffers)) : a.model;
      ta = (await evaluate(model, test, { batchSize: 500, threads: 1 })).top1;
    }
    const kdSeconds = (Date.now() - t0) / 1000;
    t0 = Date.now();
    let tb = NaN;
    if (ARMS.has('ce')) {
      const b = await train(student, data, { ...common, seed, alpha: 1 });
      tb = (await evaluate(b.model, test, { batchSize: 500, threads: 1 })).top1;
    }
    const ceSeconds = (Date.now() - t0) / 1000;
    kd.push(ta);
    ce.push(tb);
    diffs.push(ta - tb);
    rows.push([String(seed), pct(ta), pct(tb), `${((ta - tb) * 100).toFixed(2)} pp`, `${kdSeconds.toFixed(0)} / ${ceSeconds.toFixed(0)}`]);
    console.log(`seed ${seed}: distilled ${pct(ta)}, hard labels ${pct(tb)}`);
  }
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  // sample standard deviation of the per-seed differences: the spread the mean's margin should be read against
  const sd = (x: number[]) => Math.sqrt(x.reduce((s, v) => s + (v - mean(x)) ** 2, 0) / Math.max(1, x.length - 1));
  rows.push(['mean', pct(mean(kd)), pct(mean(ce)), `${((mean(kd) - mean(ce)) * 100).toFixed(2)} pp`, '']);
  console.log(`\n${formatTable(rows, { right: [1, 2, 3, 4] })}`);
  const wins = diffs.filter((d) => d > 0).length;
  console.log(`\nper-seed difference: mean ${(mean(diffs) * 100).toFixed(2)} pp, sd ${(sd(diffs) * 100).toFixed(2)} pp, min ${(Math.min(...diffs) * 100).toFixed(2)} pp, max ${(Math.max(...diffs) * 100).toFixed(2)} pp; distilled wins ${wins} of ${diffs.length} seeds`);
  console.log(mean(kd) > mean(ce) ? 'distillation wins' : 'distillation does NOT win here');
  return 0;
}

process.exitCode = await main();
