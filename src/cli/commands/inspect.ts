/** `optimize inspect <model> [--json]`: what a model takes, returns and is made of. */
import type { Command } from 'commander';
import { loadModel } from '../../onnx/io.js';
import { formatSummary, inspectModel } from '../../onnx/inspect.js';
import { fileSize, printJson, printText } from '../output.js';

export interface InspectCommandOptions {
  json?: boolean;
}

/** Runs `inspect` (also what `main.ts` calls): loads the model and prints its summary. */
export async function inspectCommand(modelPath: string, options: InspectCommandOptions): Promise<void> {
  const model = await loadModel(modelPath);
  const summary = inspectModel(model, { fileBytes: await fileSize(modelPath) });
  if (options.json) printJson({ file: modelPath, ...summary });
  else printText(`Model ${modelPath}\n\n${formatSummary(summary)}`);
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show what a model takes, returns and is made of: inputs, outputs, ops, parameters, bytes, quantization')
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', `
Examples:
  $ optimize inspect model.onnx                 # ops, parameters, bytes per dtype, zero share, quantization
  $ optimize inspect model.int8.onnx --json     # the same as one JSON document
`)
    .action(inspectCommand);
}
