/**
 * Graph hygiene: the clean-ups every compression step wants first. Each is a pass (see `pass.ts`), listed in
 * `HYGIENE_PASSES`, with a plain-function wrapper here.
 *
 * | pass | function |
 * |---|---|
 * | `hygiene.foldBatchNorm` | `foldBatchNorm` |
 * | `hygiene.removeIdentity` | `removeIdentity` |
 * | `hygiene.foldConstants` | `foldConstants` |
 * | `hygiene.removeUnused` | `removeUnused` |
 * | `hygiene.all` | `cleanup` |
 */
import { runPass, type Pass, type PassContext, type PassResult } from '../../pass.js';
import type { Model } from '../ir.js';
import { cleanupPass, type CleanupOptions } from './all.js';
import { foldBatchNormPass, type FoldBatchNormOptions } from './foldBatchNorm.js';
import { foldConstantsPass, type FoldConstantsOptions } from './foldConstants.js';
import { removeIdentityPass, type RemoveIdentityOptions } from './removeIdentity.js';
import { removeUnusedPass, type RemoveUnusedOptions } from './removeUnused.js';

export { cleanupPass, cleanupOptions, CLEANUP_STEPS, type CleanupOptions } from './all.js';
export { foldBatchNormPass, foldBatchNormOptions, BN_FOLD_TARGETS, type FoldBatchNormOptions } from './foldBatchNorm.js';
export { foldConstantsPass, foldConstantsOptions, NON_DETERMINISTIC_OPS, type FoldConstantsOptions } from './foldConstants.js';
export { removeIdentityPass, removeIdentityOptions, type RemoveIdentityOptions } from './removeIdentity.js';
export { removeUnusedPass, removeUnusedOptions, type RemoveUnusedOptions } from './removeUnused.js';

/**
 * Every hygiene pass, in the order `hygiene.all` runs them, and `hygiene.all` last: the explicit list that
 * registries, docs and the CLI read.
 *
 * @example
 * ```ts
 * for (const pass of HYGIENE_PASSES) console.log(pass.name, optionsJsonSchema(pass));
 * ```
 */
export const HYGIENE_PASSES: readonly Pass[] = [foldConstantsPass, removeIdentityPass, foldBatchNormPass, removeUnusedPass, cleanupPass] as Pass[];

/**
 * Folds inference-mode BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul before it (in place).
 *
 * @example
 * ```ts
 * const { modified, notes } = await foldBatchNorm(await loadModel('fixtures/fmnist-cnn.onnx'));
 * ```
 */
export function foldBatchNorm(model: Model, options: FoldBatchNormOptions = {}, ctx: PassContext = {}): Promise<PassResult> {
  return runPass(foldBatchNormPass, model, options, ctx);
}

/**
 * Removes Identity and inference-mode Dropout nodes (in place); graph output names stay.
 *
 * @example
 * ```ts
 * await removeIdentity(model, { dropout: true });
 * ```
 */
export function removeIdentity(model: Model, options: RemoveIdentityOptions = {}, ctx: PassContext = {}): Promise<PassResult> {
  return runPass(removeIdentityPass, model, options, ctx);
}

/**
 * Turns Constant nodes into initializers and folds nodes whose inputs are all constant, using onnxruntime (in place).
 *
 * @example
 * ```ts
 * await foldConstants(model, { maxOutputBytes: 4 << 20 });
 * ```
 */
export function foldConstants(model: Model, options: FoldConstantsOptions = {}, ctx: PassContext = {}): Promise<PassResult> {
  return runPass(foldConstantsPass, model, options, ctx);
}

/**
 * Removes unread nodes, unread initializers and stale value_info entries (in place); graph inputs stay.
 *
 * @example
 * ```ts
 * await removeUnused(model);
 * ```
 */
export function removeUnused(model: Model, options: RemoveUnusedOptions = {}, ctx: PassContext = {}): Promise<PassResult> {
  return runPass(removeUnusedPass, model, options, ctx);
}

/**
 * Runs every hygiene pass until nothing changes (in place).
 *
 * @example
 * ```ts
 * const { notes } = await cleanup(model);
 * ```
 */
export function cleanup(model: Model, options: CleanupOptions = {}, ctx: PassContext = {}): Promise<PassResult> {
  return runPass(cleanupPass, model, options, ctx);
}
