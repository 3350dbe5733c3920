/**
 * `optimize demo [--out dir] [--json]`: the whole story on the bundled fixtures, in about a minute on two cores.
 *
 * 1. Inspects and evaluates the bundled Fashion-MNIST CNN on the bundled 256-image test slice and compares the
 *    accuracy with what PyTorch reported for the same model (`fixtures/reference.json`): onnxruntime in Node.js
 *    gives the same answers.
 * 2. Runs a pipeline config (written to `<out>/config.json`, so `optimize run` can rerun or change it) on the
 *    bundled teacher (`fixtures/fmnist-teacher.onnx`, 92.76% on the full test set): channel pruning, pruning
 *    recovered by a short distillation from the teacher, static int8, and the bundled student (distilled by
 *    onnxpress on the full training set) fine-tuned briefly from the teacher and quantized; then evaluates them
 *    all and writes report.json/md/html in `<out>` (default `./onnxpress-demo`).
 *
 * Only the 256 bundled images are used: the first 128 train and calibrate, the other 128 measure accuracy (so
 * nothing is measured on images it was trained on; 128 samples make a coarse measurement: 1 image = 0.78 points).
 * Works from an installed package: the fixtures are found relative to the package root.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { evaluate, type EvalResult } from '../../eval/accuracy.js';
import { loadDataset } from '../../eval/datasets.js';
import { loadModel } from '../../onnx/io.js';
import { formatBytes, formatCount, formatPercent, formatShape, formatTable, inspectModel, type IOSummary } from '../../onnx/inspect.js';
import { resolveConfig, type PipelineConfig } from '../../pipeline/config.js';
import { runConfig, type RunProgress, type RunResult } from '../../pipeline/run.js';
import { writeFileAtomic } from '../../util/fs.js';
import { GoalNotMet } from './quantize.js';
import { fileSize, packageRoot, printJson, printText, progress } from '../output.js';

export interface DemoCommandOptions {
  json?: boolean;
  /** Output folder (default ./onnxpress-demo). */
  out?: string;
  /** Recompute what the cache holds. */
  force?: boolean;
}

interface Reference {
  top1: { correct: number };
  top5: { correct: number };
  n: number;
}

/** The bundled model, data and reference numbers, as paths under the package root. */
export function demoFiles(): { model: string; data: string; reference: string; teacher: string; student: string; images: string; labels: string } {
  const root = packageRoot();
  const slice = join(root, 'fixtures', 'fmnist-test-256');
  return {
    model: join(root, 'fixtures', 'fmnist-cnn.onnx'),
    data: join(slice, 'cnn.json'),
    reference: join(root, 'fixtures', 'reference.json'),
    teacher: join(root, 'fixtures', 'fmnist-teacher.onnx'),
    student: join(root, 'fixtures', 'fmnist-student.onnx'),
    images: join(slice, 'images-idx3-ubyte.gz'),
    labels: join(slice, 'labels-idx1-ubyte.gz'),
  };
}

/** How long each latency configuration is timed in the demo, in ms (enough for a stable median of a small CNN). */
const DEMO_LATENCY_MS = 250;

/**
 * The demo's pipeline config and its two dataset descriptors (the halves of the bundled slice), with paths
 * relative to `outDir`'s files (`config.json` and `data/*.json` are written there).
 */
export function demoConfig(outDir: string): { config: PipelineConfig; descriptors: Record<'train' | 'test', object> } {
  const f = demoFiles();
  const input = { layout: 'NCHW', scale: 1 / 255, mean: [0.286], std: [0.353] };
  const data = (extra: object) => ({ format: 'idx', images: f.images, labels: f.labels, input, ...extra });
  const rel = (p: string) => relative(outDir, p);
  const distill = { data: 'data/train.json', batchSize: 32, temperature: 4, alpha: 0.5 };
  // the latency-aware placement that `optimize quantize` does by default (a pipeline's default is 'off', for
  // reproducible content keys): without it the student's int8 copy ran 3.7× slower than the student at batch 32
  // (1-channel first conv, uint8 MaxPool), which is not what the demo should teach
  const quantize = { type: 'quantize', mode: 'static', latency: 'auto', batch: [32, 1] } as const;
  return {
    descriptors: { train: data({ limit: 128 }), test: data({ offset: 128 }) },
    config: {
      model: rel(f.teacher),
      data: 'data/test.json',
      calibration: 'data/train.json',
      outDir: '.',
      seed: 0,
      variants: [
        { name: 'pruned', passes: [{ type: 'prune', method: 'channels', sparsity: 0.5 }] },
        { name: 'pruned-distilled', parent: 'pruned', passes: [{ type: 'distill', teacher: 'float', epochs: 15, lr: 0.001, ...distill }] },
        { name: 'int8', passes: [quantize] },
        { name: 'pruned-distilled-int8', parent: 'pruned-distilled', passes: [quantize] },
        { name: 'student', passes: [{ type: 'distill', student: rel(f.student), epochs: 2, lr: 0.0001, ...distill }] },
        { name: 'student-int8', parent: 'student', passes: [quantize] },
      ],
      evaluate: { latency: { ep: ['cpu'], batch: [1, 32], time: DEMO_LATENCY_MS } },
    },
  };
}

/** Writes the demo's config and descriptors into `outDir` and runs it. */
async function runDemoPipeline(outDir: string, options: DemoCommandOptions): Promise<RunResult> {
  const { config, descriptors } = demoConfig(outDir);
  await writeFileAtomic(join(outDir, 'data', 'train.json'), `${JSON.stringify(descriptors.train, null, 2)}\n`);
  await writeFileAtomic(join(outDir, 'data', 'test.json'), `${JSON.stringify(descriptors.test, null, 2)}\n`);
  await writeFileAtomic(join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const resolved = await resolveConfig(config, { baseDir: outDir, source: join(outDir, 'config.json') });
  const onProgress = options.json ? undefined : (p: RunProgress) => {
    if (p.stage === 'model' || p.stage === 'measure' || p.stage === 'failed') {
      process.stderr.write(`  [${p.done + 1}/${p.total}] ${p.variant}: ${p.stage === 'model' ? 'making the model' : p.stage === 'measure' ? 'measuring' : `failed: ${p.message}`}\n`);
    }
  };
  return runConfig(resolved, { force: options.force ?? false, ...(onProgress ? { onProgress } : {}) });
}

async function readReference(path: string): Promise<Reference | undefined> {
  try {
    const ref = JSON.parse(await readFile(path, 'utf8')) as { models?: Record<string, { slice256?: Reference }> };
    return ref.models?.['fmnist-cnn.onnx']?.slice256;
  } catch {
    return undefined; // the comparison is a bonus; the demo works without it
  }
}

/** A path as the user would type it from here: relative when under the working folder. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function io(v: IOSummary): string {
  return `${v.name} ${v.dtype ?? '?'} ${formatShape(v.shape)}`;
}

/** Runs `demo`. */
export async function demoCommand(options: DemoCommandOptions): Promise<void> {
  const files = demoFiles();
  const model = await loadModel(files.model);
  const summary = inspectModel(model, { fileBytes: await fileSize(files.model) });
  const dataset = await loadDataset(files.data, { inputNames: summary.inputs.map((i) => i.name) });
  const bar = progress('evaluating', options);
  let result: EvalResult;
  try {
    result = await evaluate(model, dataset, { onProgress: bar.update });
  } finally {
    bar.stop();
  }
  const reference = await readReference(files.reference);
  const outDir = resolve(options.out ?? 'onnxpress-demo');
  if (options.json) {
    const run = await runDemoPipeline(outDir, options);
    printJson({ model: files.model, data: files.data, summary, result, pytorch: reference ?? null, outDir, report: run.report ?? null, footprint: run.footprint, failed: run.failed, variants: run.variants });
    if (run.failed.length) throw new GoalNotMet(`demo variants failed: ${run.failed.join(', ')}`);
    return;
  }
  const vsTorch = (mine: number, theirs: number | undefined): string =>
    theirs === undefined ? '' : `PyTorch: ${formatCount(theirs)} / ${formatCount(reference!.n)}, ${mine === theirs ? 'the same' : `a difference of ${mine - theirs}`}`;
  const ops = summary.ops.map((o) => `${o.domain ? o.domain + '.' : ''}${o.opType} ×${o.count}`).join(', ');
  const floatBytes = summary.bytesByDtype.map((r) => `${r.dtype} ${formatBytes(r.bytes)}`).join(', ');
  const part1 = [
    `onnxpress demo, part 1: a small Fashion-MNIST CNN trained in PyTorch (${shown(files.model)}), run by onnxruntime in Node.js`,
    '',
    formatTable([
      ['Model', `${summary.fileBytes !== undefined ? formatBytes(summary.fileBytes) + ', ' : ''}opset ${summary.opsetImports.find((o) => o.domain === '')?.version ?? '?'}, ${summary.nodes} nodes: ${ops}`],
      ['Parameters', `${formatCount(summary.parameters)} (${floatBytes}), ${formatPercent(summary.zeroWeights.fraction)} zeros`],
      ['Takes', summary.inputs.map(io).join(', ')],
      ['Returns', summary.outputs.map(io).join(', ')],
    ]),
    '',
    `Accuracy on the first ${formatCount(result.samples)} Fashion-MNIST test images (${result.ep}, ${result.seconds.toFixed(2)} s):`,
    formatTable(
      [
        ['Top-1', formatPercent(result.top1), `(${formatCount(result.correct.top1)} / ${formatCount(result.samples)})`, vsTorch(result.correct.top1, reference?.top1.correct)],
        ['Top-5', formatPercent(result.top5), `(${formatCount(result.correct.top5)} / ${formatCount(result.samples)})`, vsTorch(result.correct.top5, reference?.top5.correct)],
      ],
      { indent: '  ', right: [1] },
    ),
    '',
    `Part 2: a bigger model (${shown(files.teacher)}, 92.76% top-1 on the full test set) made smaller four ways: channel pruning,`,
    'pruning recovered by a short distillation from the original, static int8, and a small student distilled from it',
    '(the bundled one, fine-tuned briefly here), each alone and combined. Trained and calibrated on the first 128',
    `bundled images, measured on the other 128 (so one image is 0.78 points). Writing to ${shown(outDir)}:`,
  ];
  printText(part1.join('\n'));
  const run = await runDemoPipeline(outDir, options);
  const lines = [
    '',
    run.markdown ?? '',
    '',
    `Report:   ${shown(run.report!.html)} (open it in a browser; also report.md and report.json)`,
    `Models:   ${shown(join(outDir, 'models'))}/`,
    `Change the story and rerun (unchanged steps come from the cache): optimize run ${shown(join(outDir, 'config.json'))}`,
    '',
    'On your own model:',
    '  optimize inspect model.onnx',
    '  optimize eval model.onnx --data descriptor.json',
  ];
  printText(lines.join('\n'));
  if (run.failed.length) throw new GoalNotMet(`demo variants failed: ${run.failed.join(', ')}`);
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole story on bundled models and images: evaluate, prune, distill, quantize, measure, and an HTML report')
    .option('--out <dir>', 'output folder: report.html, models/, config.json (default ./onnxpress-demo)')
    .option('--force', 'recompute everything instead of reusing the previous run’s cache')
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', `
Examples:
  $ optimize demo                        # writes ./onnxpress-demo/report.html
  $ optimize demo --out /tmp/demo --json
`)
    .action(demoCommand);
}
