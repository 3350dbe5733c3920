/** `optimize eval <model> --data <descriptor.json>`: accuracy of a classifier on a labelled dataset. */
import { Option, type Command } from 'commander';
import { evaluate, formatEvalResult } from '../../eval/accuracy.js';
import { loadDataset } from '../../eval/datasets.js';
import { loadModel } from '../../onnx/io.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { positiveInteger, printJson, printText, progress } from '../output.js';

export interface EvalCommandOptions {
  data: string;
  json?: boolean;
  ep: ExecutionProvider;
  threads?: number;
  batchSize?: number;
  limit?: number;
  logits?: string;
}

/** Runs `eval`: loads the model and the dataset, evaluates, prints the result. */
export async function evalCommand(modelPath: string, options: EvalCommandOptions): Promise<void> {
  const model = await loadModel(modelPath);
  const inputNames = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
  const dataset = await loadDataset(options.data, { inputNames });
  const bar = progress('evaluating', options);
  let result;
  try {
    result = await evaluate(model, dataset, {
      ep: options.ep,
      threads: options.threads,
      batchSize: options.batchSize,
      limit: options.limit,
      output: options.logits,
      onProgress: bar.update,
    });
  } finally {
    bar.stop();
  }
  if (options.json) printJson({ model: modelPath, data: options.data, ...result });
  else printText(`Model ${modelPath}\nData  ${options.data}\n\n${formatEvalResult(result, { classNames: dataset.classNames })}`);
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('measure a classifier: top-1/top-5 accuracy, per-class precision/recall/F1, confusion matrix')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <descriptor.json>', 'dataset descriptor (JSON) with labels')
    .option('--json', 'print one JSON document instead of text')
    .addOption(new Option('--ep <provider>', 'execution provider').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--threads <n>', 'intra-op threads (default: one per physical core)', positiveInteger)
    .option('--batch-size <n>', 'samples per run (default 64)', positiveInteger)
    .option('--limit <n>', 'evaluate only the first n samples', positiveInteger)
    .option('--logits <output>', 'model output that holds the class scores (default: the first output)')
    .addHelpText('after', `
Examples:
  $ optimize eval model.onnx --data test.json                       # top-1/top-5, per-class F1, confusion matrix
  $ optimize eval model.onnx --data test.json --limit 1000 --threads 1
  $ optimize eval model.onnx --data test.json --ep webgpu --json
`)
    .action(evalCommand);
}
