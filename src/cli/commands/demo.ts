/**
 * `optimize demo`: inspects and evaluates the bundled Fashion-MNIST CNN on the bundled 256-image test slice, and
 * compares the accuracy with what PyTorch reported for the same model (`fixtures/reference.json`). Works from an
 * installed package: the fixtures are found relative to the package root.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { Command } from 'commander';
import { evaluate, type EvalResult } from '../../eval/accuracy.js';
import { loadDataset } from '../../eval/datasets.js';
import { loadModel } from '../../onnx/io.js';
import { formatBytes, formatCount, formatPercent, formatShape, formatTable, inspectModel, type IOSummary } from '../../onnx/inspect.js';
import { fileSize, packageRoot, printJson, printText, progress } from '../output.js';

export interface DemoCommandOptions {
  json?: boolean;
}

interface Reference {
  top1: { correct: number };
  top5: { correct: number };
  n: number;
}

/** The bundled model, data and reference numbers, as paths under the package root. */
export function demoFiles(): { model: string; data: string; reference: string } {
  const root = packageRoot();
  return {
    model: join(root, 'fixtures', 'fmnist-cnn.onnx'),
    data: join(root, 'fixtures', 'fmnist-test-256', 'cnn.json'),
    reference: join(root, 'fixtures', 'reference.json'),
  };
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
  if (options.json) {
    printJson({ model: files.model, data: files.data, summary, result, pytorch: reference ?? null });
    return;
  }
  const vsTorch = (mine: number, theirs: number | undefined): string =>
    theirs === undefined ? '' : `PyTorch: ${formatCount(theirs)} / ${formatCount(reference!.n)}, ${mine === theirs ? 'the same' : `a difference of ${mine - theirs}`}`;
  const ops = summary.ops.map((o) => `${o.domain ? o.domain + '.' : ''}${o.opType} ×${o.count}`).join(', ');
  const floatBytes = summary.bytesByDtype.map((r) => `${r.dtype} ${formatBytes(r.bytes)}`).join(', ');
  const lines = [
    `onnxpress demo: a small Fashion-MNIST CNN trained in PyTorch (${shown(files.model)})`,
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
    'On your own model:',
    '  optimize inspect model.onnx',
    '  optimize eval model.onnx --data descriptor.json',
  ];
  printText(lines.join('\n'));
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('inspect and evaluate the bundled Fashion-MNIST CNN on 256 bundled test images')
    .option('--json', 'print one JSON document instead of text')
    .action(demoCommand);
}
