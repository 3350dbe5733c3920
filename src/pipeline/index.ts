/**
 * The pipeline: a chainable API (`pipeline()`), the JSON config (`resolveConfig`) and the runner (`runConfig`)
 * behind `optimize run`; content keys and the cache (`cache.ts`).
 */
export { pipeline, Pipeline, type PipelineOptions, type PipelineRunOptions, type PipelineResult, type PruneStep, type QuantizeStep, type DistillStep, type ConvertStep, type HygieneStep } from './pipeline.js';
export {
  pipelineConfig,
  variantConfig,
  evaluateConfig,
  distillStepOptions,
  parseConfig,
  resolveConfig,
  resolveStep,
  configBaseDir,
  formatPath,
  STEP_TYPES,
  type PipelineConfig,
  type VariantConfig,
  type EvaluateConfig,
  type ResolvedConfig,
  type ResolvedVariant,
  type ResolvedEvaluate,
  type ResolveOptions,
  type StepConfig,
  type StepType,
} from './config.js';
export { runConfig, type RunOptions, type RunProgress, type RunResult } from './run.js';
export { canonicalJson, ContentHashes, stepKey } from './cache.js';
