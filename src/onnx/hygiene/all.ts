/**
 * `hygiene.all`: runs the hygiene passes in order — foldConstants (so that Constant-node weights count as
 * constants), removeIdentity (so that a BN behind an Identity meets its Conv), foldBatchNorm, removeUnused —
 * until a whole round changes nothing, or `maxRounds` rounds have run.
 */
import { z } from 'zod';
import { runPass, type Pass, type PassContext, type PassResult } from '../../pass.js';
import type { Model } from '../ir.js';
import { foldBatchNormOptions, foldBatchNormPass } from './foldBatchNorm.js';
import { foldConstantsOptions, foldConstantsPass } from './foldConstants.js';
import { removeIdentityOptions, removeIdentityPass } from './removeIdentity.js';
import { removeUnusedOptions, removeUnusedPass } from './removeUnused.js';

/** The steps of `hygiene.all`, in the order each round runs them. */
/**
 * The steps of `hygiene.all`, in the order each round runs them.
 *
 * @example
 * ```ts
 * await cleanup(model, { steps: CLEANUP_STEPS.filter((s) => s !== 'foldConstants') });
 * ```
 */
export const CLEANUP_STEPS = ['foldConstants', 'removeIdentity', 'foldBatchNorm', 'removeUnused'] as const;

/**
 * Options of `hygiene.all`: which steps, how many rounds at most, and each step's own options.
 *
 * @example
 * ```ts
 * cleanupOptions.parse({ maxRounds: 2, foldConstants: { maxOutputBytes: 4 << 20 } });
 * ```
 */
export const cleanupOptions = z.object({
  steps: z.array(z.enum(CLEANUP_STEPS)).default([...CLEANUP_STEPS]).describe('Which passes to run (always in the order of CLEANUP_STEPS)'),
  maxRounds: z.number().int().min(1).default(8).describe('Stop after this many rounds even if the last one changed something'),
  foldConstants: foldConstantsOptions.prefault({}).describe('Options of hygiene.foldConstants'),
  removeIdentity: removeIdentityOptions.prefault({}).describe('Options of hygiene.removeIdentity'),
  foldBatchNorm: foldBatchNormOptions.prefault({}).describe('Options of hygiene.foldBatchNorm'),
  removeUnused: removeUnusedOptions.prefault({}).describe('Options of hygiene.removeUnused'),
});
export type CleanupOptions = z.input<typeof cleanupOptions>;

const STEP_PASSES = {
  foldConstants: foldConstantsPass,
  removeIdentity: removeIdentityPass,
  foldBatchNorm: foldBatchNormPass,
  removeUnused: removeUnusedPass,
} satisfies Record<(typeof CLEANUP_STEPS)[number], Pass>;

/**
 * The `hygiene.all` pass; its cases are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { modified, notes } = await runPass(cleanupPass, model, { maxRounds: 4 });
 * ```
 */
export const cleanupPass: Pass<typeof cleanupOptions> = {
  name: 'hygiene.all',
  description: 'Runs foldConstants, removeIdentity, foldBatchNorm and removeUnused until nothing changes',
  inPlace: true,
  options: cleanupOptions,
  async run(model: Model, options, ctx: PassContext): Promise<PassResult> {
    const notes: string[] = [];
    let modified = false;
    for (let round = 1; round <= options.maxRounds; round++) {
      let changed = false;
      for (const step of CLEANUP_STEPS) {
        if (!options.steps.includes(step)) continue;
        // notes go into this pass's result, not straight to ctx.note (runPass forwards them once)
        const r = await runPass(STEP_PASSES[step] as Pass, model, options[step], { ...ctx, note: undefined });
        changed ||= r.modified;
        // the same "left …" note comes back every round: keep each once
        for (const n of r.notes ?? []) if (!notes.includes(n)) notes.push(n);
      }
      modified ||= changed;
      if (!changed) break;
      if (round === options.maxRounds) notes.push(`stopped after ${round} rounds with changes still being made`);
    }
    return { model, modified, notes };
  },
};
