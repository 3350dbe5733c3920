/**
 * The one pass contract. A pass takes a model and validated options and returns `{ model, modified }`; it
 * declares its options once, as a zod schema (types, defaults, descriptions), which drives validation, the
 * CLI's `--help`, config files and docs. Passes never touch the file system or the console.
 *
 * Plain functions (`foldBatchNorm(model)`) are thin wrappers over `runPass`.
 */
import { z } from 'zod';
import { OptionsError, PassError, OnnxpressError } from './errors.js';
import type { Model } from './onnx/ir.js';

/** What a pass may use besides the model: a seed for anything random, and a sink for notes. */
export interface PassContext {
  /** Seed for passes that draw random numbers (same seed → same output). */
  seed?: number;
  /** Receives human-readable notes (what was changed and why something was left alone). */
  note?: (message: string) => void;
  /** Cancels long passes. */
  signal?: AbortSignal;
}

/** What a pass returns. */
export interface PassResult {
  model: Model;
  /** Whether anything changed; a pass run twice must report false the second time. */
  modified: boolean;
  /** Notes for the report, e.g. "left node X in float: no integer kernel". */
  notes?: string[];
}

/**
 * A pass: a name (`namespace.name`, e.g. `hygiene.foldBatchNorm`), whether it edits the model in place, an
 * options schema and `run`.
 *
 * @example
 * ```ts
 * const removeIdentity: Pass<typeof schema> = {
 *   name: 'hygiene.removeIdentity', inPlace: true, description: 'Removes Identity nodes',
 *   options: z.object({}), run: (model) => ({ model, modified: false }),
 * };
 * ```
 */
export interface Pass<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly description: string;
  /** True when `run` edits and returns the model it was given; false when it returns a new model. */
  readonly inPlace: boolean;
  readonly options: S;
  run(model: Model, options: z.output<S>, ctx: PassContext): PassResult | Promise<PassResult>;
}

/**
 * Validates options against a schema; errors name the bad field (`sparsity: Expected a number ≤ 1, received 2`).
 *
 * @example
 * ```ts
 * parseOptions(z.object({ sparsity: z.number().max(1) }), { sparsity: 0.5 }, 'prune.magnitude');
 * ```
 */
export function parseOptions<S extends z.ZodType>(schema: S, raw: unknown, owner: string): z.output<S> {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`);
  throw new OptionsError(`Invalid options for ${owner}: ${issues.join('; ')}`);
}

/**
 * Runs a pass: validates its options, runs it, and checks that it kept its in-place declaration.
 *
 * @example
 * ```ts
 * const { model: out, modified } = await runPass(foldBatchNormPass, model);
 * ```
 */
export async function runPass<S extends z.ZodType>(
  pass: Pass<S>,
  model: Model,
  rawOptions: z.input<S> | Record<string, unknown> = {},
  ctx: PassContext = {},
): Promise<PassResult> {
  const options = parseOptions(pass.options, rawOptions, pass.name);
  let result: PassResult;
  try {
    result = await pass.run(model, options, ctx);
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    throw new PassError(`Pass ${pass.name} failed: ${(e as Error).message}`, { cause: e });
  }
  if (pass.inPlace && result.model !== model) throw new PassError(`Pass ${pass.name} declares inPlace but returned a different model`);
  if (!pass.inPlace && result.modified && result.model === model) {
    throw new PassError(`Pass ${pass.name} declares that it returns a new model but modified the one it was given`);
  }
  for (const n of result.notes ?? []) ctx.note?.(n);
  return result;
}

/** The JSON schema of a pass's options, for docs and config-file editors. */
export function optionsJsonSchema(pass: Pass): unknown {
  return z.toJSONSchema(pass.options, { io: 'input' });
}
