/**
 * The chainable pipeline: `pipeline(model).prune(…).quantize(…).evaluate(…).run({ outDir })`. It is a config
 * builder: each call checks its options at once (with the pass's own schema) and returns a new pipeline; `run`
 * resolves `toConfig()` exactly as `optimize run` resolves a file and hands it to the same `runConfig`, so the API
 * and a config give the same content keys and the same model bytes.
 *
 * A pipeline is one chain of passes: one variant (named by `.as(name)`, else after its passes, `prune+quantize`)
 * next to the float reference. Several variants and sweeps are written as a config (`runConfig`).
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { OptionsError } from '../errors.js';
import type { CleanupOptions } from '../onnx/hygiene/index.js';
import { Model } from '../onnx/ir.js';
import { saveModel } from '../onnx/io.js';
import type { PruneOptions } from '../prune/index.js';
import type { QuantizeOptions } from '../quantize/quantize.js';
import { temporaryPath } from '../util/fs.js';
import { ContentHashes } from './cache.js';
import { formatPath, resolveConfig, resolveStep, stepFiles, type distillStepOptions, type EvaluateConfig, type PipelineConfig, type StepConfig, type StepType } from './config.js';
import { runConfig, type RunOptions, type RunProgress, type RunResult } from './run.js';

/** Options of a `prune` step (`prune()`'s options, data as descriptor paths; `finetune` is API-only there). */
export type PruneStep = Omit<PruneOptions, 'finetune' | 'calibration' | 'data'> & { calibration?: string; data?: string };
/** Options of a `quantize` step (`quantize()`'s options, data as descriptor paths). */
export type QuantizeStep = Omit<QuantizeOptions, 'calibration' | 'evalData'> & { calibration?: string; evalData?: string };
/** Options of a `distill` step: see `distillStepOptions`. */
export type DistillStep = z.input<typeof distillStepOptions>;
/** Options of a `convert` step: the target and the converter's options. */
export type ConvertStep = { to: 'fp16' | 'tfjs' } & Record<string, unknown>;
/** Options of a `hygiene` step (`cleanup()`'s options). */
export type HygieneStep = CleanupOptions;

/** Options of `pipeline()`. */
export interface PipelineOptions {
  /** Seed for every pass that draws random numbers (default 0). */
  seed?: number;
  /** Calibration data for quantize (static) and prune (channels) steps that give none. */
  calibration?: string;
  /** Progress of `run`. */
  onProgress?: (p: RunProgress) => void;
}

/** Options of `Pipeline.run`. */
export interface PipelineRunOptions extends Omit<RunOptions, 'onProgress'> {
  /** Output folder (footprint.json, report.*, models/, cache/). */
  outDir: string;
}

/** What `Pipeline.run` returns: `runConfig`'s result plus the variant's row. */
export interface PipelineResult extends RunResult {
  /** The row of the pipeline's variant (`variants[1]`). */
  result: RunResult['variants'][number];
}

interface State {
  model: string | Model;
  options: PipelineOptions;
  steps: StepConfig[];
  evaluate?: EvaluateConfig;
  name?: string;
}

/** A chain of passes on a model; immutable (every call returns a new pipeline). */
export class Pipeline {
  /** @internal use `pipeline()` */
  constructor(private readonly state: State) {}

  private with(patch: Partial<State>): Pipeline {
    return new Pipeline({ ...this.state, ...patch });
  }

  private step(type: StepType, options: object): Pipeline {
    const index = this.state.steps.length;
    const step = { type, ...options } as StepConfig;
    const r = resolveStep(step, { base: process.cwd(), ...(this.state.options.calibration ? { calibration: resolve(this.state.options.calibration) } : {}), variantNames: new Set(['float']) });
    if (r.issues.length) {
      throw new OptionsError(`Invalid options for step ${index + 1} (${type}): ${r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; ')}`);
    }
    return this.with({ steps: [...this.state.steps, step] });
  }

  /** Prunes (see `prune()`): `.prune({ method: 'channels', sparsity: 0.5 })`. */
  prune(options: PruneStep = {}): Pipeline {
    return this.step('prune', options);
  }

  /** Quantizes (see `quantize()`): `.quantize({ mode: 'static', calibration: 'calib.json' })`. */
  quantize(options: QuantizeStep = {}): Pipeline {
    return this.step('quantize', options);
  }

  /** Distills (see `distillStepOptions`): `.distill({ data: 'train.json', teacher: 'float', epochs: 2 })`. */
  distill(options: DistillStep): Pipeline {
    return this.step('distill', options);
  }

  /** Converts: `.convert({ to: 'fp16' })`. */
  convert(options: ConvertStep): Pipeline {
    return this.step('convert', options);
  }

  /** Cleans the graph (see `cleanup()`): `.hygiene({ steps: ['foldBatchNorm'] })`. */
  hygiene(options: HygieneStep = {}): Pipeline {
    return this.step('hygiene', options);
  }

  /** How the float model and the variant are measured: `.evaluate({ data: 'test.json', latency: { batch: [1, 32] } })`. */
  evaluate(options: EvaluateConfig): Pipeline {
    return this.with({ evaluate: options });
  }

  /** Names the variant (default: its pass types joined by '+'). */
  as(name: string): Pipeline {
    return this.with({ name });
  }

  /** The variant's name. */
  get name(): string {
    return this.state.name ?? (this.state.steps.map((s) => s.type).join('+') || 'copy');
  }

  /**
   * The JSON config this pipeline runs. Paths are absolute, or relative to `relativeTo` (the folder the config
   * file will be written to). Needs the model as a file path.
   *
   * @example
   * ```ts
   * await writeFile('run.json', JSON.stringify(pipeline('m.onnx').quantize({ mode: 'dynamic' }).toConfig({ outDir: 'out', relativeTo: '.' })));
   * ```
   */
  toConfig(options: { outDir?: string; relativeTo?: string } = {}): PipelineConfig {
    const { model } = this.state;
    if (model instanceof Model) throw new OptionsError('toConfig needs the model as a file path, not a Model object: save it first');
    const path = (p: string) => {
      const a = resolve(p);
      return options.relativeTo === undefined ? a : relative(resolve(options.relativeTo), a) || '.';
    };
    const steps = this.state.steps.map((s) => {
      const out: StepConfig = { ...s };
      const f = stepFiles(s.type);
      for (const k of f.dataFields) if (typeof out[k] === 'string') out[k] = path(out[k] as string);
      for (const k of f.modelFields) if (typeof out[k] === 'string' && !(k === 'teacher' && out[k] === 'float')) out[k] = path(out[k] as string);
      return out;
    });
    const ev: EvaluateConfig | undefined = this.state.evaluate ? { ...this.state.evaluate } : undefined;
    if (ev?.data) ev.data = path(ev.data);
    const o = this.state.options;
    return {
      model: path(model),
      ...(o.calibration ? { calibration: path(o.calibration) } : {}),
      outDir: path(options.outDir ?? 'onnxpress-out'),
      seed: o.seed ?? 0,
      ...(ev ? { evaluate: ev } : {}),
      variants: steps.length ? [{ name: this.name, passes: steps }] : [],
    };
  }

  /**
   * Runs the pipeline: the float model and the variant, saved under `outDir/models`, measured, recorded in
   * `footprint.json` and the reports. Unchanged steps are reused from `outDir/cache`.
   *
   * @example
   * ```ts
   * const { result, report } = await pipeline('model.onnx').quantize({ mode: 'static', calibration: 'calib.json' })
   *   .evaluate({ data: 'test.json', latency: { ep: ['cpu'], batch: [1, 32] } }).run({ outDir: 'out' });
   * console.log(result.accuracy?.top1, report?.html);
   * ```
   */
  async run(options: PipelineRunOptions): Promise<PipelineResult> {
    let source: Pipeline = this;
    const outDir = resolve(options.outDir);
    if (this.state.model instanceof Model) {
      // an in-memory model is saved into the cache under the hash of its bytes, like any model
      await mkdir(join(outDir, 'cache'), { recursive: true });
      const tmp = temporaryPath(join(outDir, 'cache', 'input.onnx'));
      try {
        await saveModel(this.state.model, tmp);
        const file = join(outDir, 'cache', `${await new ContentHashes().file(tmp)}.onnx`);
        await rename(tmp, file);
        source = this.with({ model: file });
      } finally {
        await rm(tmp, { force: true });
      }
    }
    const config = await resolveConfig(source.toConfig({ outDir }), { baseDir: process.cwd(), source: 'pipeline' });
    const { outDir: _, ...rest } = options;
    const r = await runConfig(config, { ...rest, ...(this.state.options.onProgress ? { onProgress: this.state.options.onProgress } : {}) });
    return { ...r, result: r.variants[1] ?? r.variants[0]! };
  }
}

/**
 * Starts a pipeline on a model file (or a loaded Model).
 *
 * @example
 * ```ts
 * import { pipeline } from 'onnxpress';
 * const { variants, report } = await pipeline('fixtures/fmnist-cnn.onnx', { seed: 1 })
 *   .prune({ method: 'channels', sparsity: 0.5, calibration: 'fixtures/fmnist-test-256/cnn.json' })
 *   .quantize({ mode: 'static', calibration: 'fixtures/fmnist-test-256/cnn.json' })
 *   .evaluate({ data: 'fixtures/fmnist-test-256/cnn.json', latency: { ep: ['cpu'], batch: [1, 32] } })
 *   .run({ outDir: 'out' });
 * ```
 */
export function pipeline(model: string | Model, options: PipelineOptions = {}): Pipeline {
  if (typeof model === 'string' && model.length === 0) throw new OptionsError('pipeline: expected a model path or a Model, got an empty string');
  if (typeof model !== 'string' && !(model instanceof Model)) throw new OptionsError(`pipeline: expected a model path or a Model but received ${typeof model}`);
  return new Pipeline({ model: typeof model === 'string' ? resolve(model) : model, options, steps: [] });
}
