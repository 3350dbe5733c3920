/**
 * `optimize run <config.json> [--dry-run] [--shard i/n] [--json] [--force]`: reads a pipeline config, resolves it
 * (paths relative to the config file, sweeps expanded, defaults filled) and hands it to `runConfig`, the function
 * the pipeline API calls. Progress goes to stderr (a bar on a terminal, else one line per step; none under --json);
 * the result to stdout:
 * the report's Markdown table (a whole run) or the shard's rows, or one JSON document under --json.
 *
 * Exit codes: 0 every variant was made and measured; 1 some variant failed (its row holds the error; the others
 * are recorded); 2 bad usage, a config that does not validate (the message names the field), a missing file.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { LoadError, OptionsError } from '../../errors.js';
import type { VariantResult } from '../../eval/schema.js';
import { formatBytes, formatPercent, formatTable } from '../../onnx/inspect.js';
import { configBaseDir, resolveConfig, type ResolvedConfig } from '../../pipeline/config.js';
import { runConfig, type RunProgress, type RunResult } from '../../pipeline/run.js';
import { liveProgress, printJson, printText } from '../output.js';
import { GoalNotMet } from './quantize.js';

export interface RunCommandOptions {
  dryRun?: boolean;
  shard?: { index: number; count: number };
  json?: boolean;
  force?: boolean;
}

/** Parses `--shard i/n`. */
export function parseShard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError('Expected i/n with 1 ≤ i ≤ n, e.g. 2/4.');
  return { index, count };
}

/** Reads and resolves a config file; errors name the file (and the field). */
export async function loadConfigFile(path: string): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoadError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new OptionsError(`${path}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return resolveConfig(raw, { baseDir: configBaseDir(path), source: path });
}

/** A path as the user would type it from here. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

const STAGES: Record<RunProgress['stage'], string> = {
  model: 'making the model',
  reused: 'model reused from the cache',
  measure: 'measuring',
  done: 'done',
  failed: 'failed',
};

/**
 * Progress on stderr: a bar over the variants on a terminal; one line per step elsewhere (CI logs, pipes), so a
 * log shows which variant a long run is on.
 */
function runProgress(): { update: (p: RunProgress) => void; stop: () => void } {
  if (!liveProgress()) {
    return {
      update: (p) => process.stderr.write(`[${p.done}/${p.total}] ${p.variant}: ${STAGES[p.stage]}${p.stage === 'failed' ? `: ${p.message ?? ''}` : ''}\n`),
      stop: () => {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'run [{bar}] {value}/{total} variants | {variant}: {stage}', clearOnComplete: true, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(p) {
      const payload = { variant: p.variant, stage: STAGES[p.stage] };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else bar.update(p.done, payload);
      if (p.stage === 'failed') bar.update(p.done, { ...payload, stage: `failed: ${p.message ?? ''}` });
    },
    stop: () => started && bar.stop(),
  };
}

/** The rows of a shard (a whole run prints the report's table instead). */
function shardTable(variants: readonly VariantResult[]): string {
  const rows = [['variant', 'parent', 'top-1', 'agreement', 'p50 (first row)', 'size', 'note']];
  for (const v of variants) {
    const l = v.latency.find((r) => r.available);
    rows.push([
      v.name,
      v.parent ?? '',
      v.accuracy ? formatPercent(v.accuracy.top1) : '',
      v.agreement ? formatPercent(v.agreement.top1Agreement) : '',
      l && l.available ? `${l.p50Ms.toFixed(3)} ms (${l.ep}, batch ${l.batch})` : '',
      v.error ? '' : formatBytes(v.size.bytes),
      v.error ? `failed: ${v.error.split('\n')[0]}` : v.notes?.some((n) => n.startsWith('reused: model')) ? 'reused' : '',
    ]);
  }
  return formatTable(rows);
}

/** Runs `run`. */
export async function runCommand(configPath: string, options: RunCommandOptions): Promise<RunResult | undefined> {
  const config = await loadConfigFile(configPath);
  if (options.dryRun) {
    printJson(config);
    return undefined;
  }
  const bar = options.json ? undefined : runProgress();
  let result: RunResult;
  try {
    result = await runConfig(config, {
      force: options.force ?? false,
      ...(options.shard ? { shard: options.shard } : {}),
      ...(bar ? { onProgress: bar.update } : {}),
    });
  } finally {
    bar?.stop();
  }
  if (options.json) {
    printJson({ footprint: result.footprint, report: result.report ?? null, failed: result.failed, variants: result.variants });
  } else {
    const lines = [result.markdown ?? shardTable(result.variants), ''];
    lines.push(`Footprint: ${shown(result.footprint)}`);
    if (result.report) lines.push(`Report:    ${shown(result.report.html)} (also report.md, report.json)`);
    else if (options.shard) lines.push(`Merge the shards with: optimize report ${shown(config.outDir)}`);
    printText(lines.join('\n'));
  }
  if (result.failed.length) {
    const failed = result.variants.filter((v) => v.error);
    if (!options.json) for (const v of failed) process.stderr.write(`optimize: variant ${v.name} failed: ${v.error}\n`);
    throw new GoalNotMet(`${failed.length} variant(s) failed`);
  }
  return result;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a pipeline config: make every variant, measure it against the float model, write footprint.json and the reports')
    .argument('<config>', 'pipeline config (JSON); its relative paths resolve against its folder')
    .option('--dry-run', 'print the resolved config (defaults filled in, sweeps expanded) and stop')
    .option('--shard <i/n>', 'run slice i of n of the variants (writes footprint-i-of-n.json; merge with optimize report)', parseShard)
    .option('--force', 'recompute models and metrics even when the cache has them')
    .option('--json', 'print one JSON document instead of text')
    .addHelpText(
      'after',
      `
Config (paths relative to the config file):
  {"model": "m.onnx", "data": "test.json", "calibration": "calib.json", "outDir": "out",
   "variants": [{"name": "int8", "passes": [{"type": "quantize", "mode": "static"}]},
                {"name": "pruned", "passes": [{"type": "prune", "method": "channels"}], "sweep": {"sparsity": [0.3, 0.5]}},
                {"name": "pruned-int8", "parent": "pruned", "passes": [{"type": "quantize", "mode": "static"}]}],
   "evaluate": {"latency": {"ep": ["cpu"], "batch": [1, 32]}}}

Pass types: prune, quantize, distill, convert, hygiene; their options are those of the commands and functions of
the same names. Unchanged variants are reused from <outDir>/cache (--force recomputes).

Examples:
  $ optimize run examples/sweep.json
  $ optimize run sweep.json --dry-run
  $ optimize run sweep.json --shard 1/3 && optimize report out

Exit codes: 0 done, 1 a variant failed (the others are recorded), 2 bad config or input.`,
    )
    .action(async (config: string, options: RunCommandOptions) => {
      await runCommand(config, options);
    });
}
