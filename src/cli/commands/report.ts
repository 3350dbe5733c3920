/**
 * `optimize report <run dir | footprint.json | report.json …>`: makes report.json, report.md and report.html from
 * the footprints of a run (merging the shards of `optimize run --shard i/n`) or re-renders existing reports, then
 * prints the Markdown table (or the report as JSON with --json).
 *
 * Exit codes: 0 written; 2 bad usage or input (a missing path, a file that is not a valid footprint or report,
 * shards of different runs, two variants with one name and different content).
 */
import { dirname, resolve } from 'node:path';
import { type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { collectRunFiles, mergeFootprints, rebaseModelPaths, renderMarkdown, writeReport } from '../../eval/report.js';
import { printJson, printText } from '../output.js';

export interface ReportCommandOptions {
  output?: string;
  html?: string;
  md?: string;
  json?: boolean;
}

/** Runs `report`. Progress and warnings go to stderr, so stdout is the Markdown table (or one JSON document). */
export async function reportCommand(inputs: string[], o: ReportCommandOptions): Promise<void> {
  const files = await collectRunFiles(inputs);
  // default output folder: the inputs' own folder, when they share one
  const folders = [...new Set(files.map((f) => resolve(dirname(f.path))))];
  if (o.output === undefined && folders.length > 1) {
    throw new OptionsError(`The inputs are in ${folders.length} folders (${folders.join(', ')}): say where to write the report with -o <dir>`);
  }
  const outDir = resolve(o.output ?? folders[0]!);
  const records = files.map((f) => ({ ...f.record, variants: rebaseModelPaths(f.record.variants, dirname(f.path), outDir) }));
  const report = mergeFootprints(records, {
    sources: files.map((f) => f.path),
    onWarning: (m) => process.stderr.write(`optimize: warning: ${m}\n`),
  });
  const written = await writeReport(outDir, report, { html: o.html, md: o.md });
  if (o.json) printJson(report);
  else printText(renderMarkdown(report));
  process.stderr.write(`wrote ${written.json}, ${written.md}, ${written.html}\n`);
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('make report.json, report.md and report.html (accuracy-vs-latency chart, Pareto frontier) from a run; merges shards')
    .argument('<inputs...>', 'run folders (their footprint*.json, or report.json), footprint.json or report.json files')
    .option('-o, --output <dir>', "folder for report.json/.md/.html (default: the inputs' folder)")
    .option('--html <file>', 'write the HTML report here instead of <dir>/report.html')
    .option('--md <file>', 'write the Markdown report here instead of <dir>/report.md')
    .option('--json', 'print the report as one JSON document instead of the Markdown table')
    .addHelpText(
      'after',
      `
Exit codes: 0 written, 2 bad usage or input (missing file, invalid footprint or report, shards of different runs).

A run folder means its footprint*.json files (one per shard of \`optimize run --shard i/n\`), or its report.json
when it has no footprint. Shards are merged: variants are de-duplicated by name and content key, and listed in
the order of the run's config.

Examples:
  $ optimize report out                                  # out/report.json, report.md, report.html
  $ optimize report shard-1 shard-2 shard-3 -o merged    # merge the shards of one sweep
  $ optimize report out/footprint.json --html site/index.html
  $ optimize report out/report.json --json > report.json`,
    )
    .action((inputs: string[], o: ReportCommandOptions) => reportCommand(inputs, o));
}
