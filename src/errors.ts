/**
 * The onnxpress error hierarchy. Every error names the file, node or tensor it is about and says what was
 * expected and what was found; lookups that fail list what exists.
 *
 * @example
 * ```ts
 * import { loadModel, OnnxpressError, LoadError } from 'onnxpress';
 * try { await loadModel('model.onnx'); }
 * catch (e) { if (e instanceof LoadError) console.error(e.message); else throw e; }
 * ```
 */
export class OnnxpressError extends Error {
  /** A short machine-readable kind, stable across releases (`load`, `options`, `pass`, `evaluation`, `graph`). */
  readonly kind: string = 'onnxpress';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A model, tensor, external-data or dataset file could not be read or is malformed. */
export class LoadError extends OnnxpressError {
  override readonly kind = 'load';
}

/** A graph is structurally invalid (cycle, dangling input, duplicate producer) or an IR edit would make it so. */
export class GraphError extends OnnxpressError {
  override readonly kind = 'graph';
}

/** Options or a config file failed validation. */
export class OptionsError extends OnnxpressError {
  override readonly kind = 'options';
}

/** A pass could not be applied. */
export class PassError extends OnnxpressError {
  override readonly kind = 'pass';
}

/** Running a model or measuring it failed (provider unavailable, wrong feed shapes, dataset mismatch). */
export class EvaluationError extends OnnxpressError {
  override readonly kind = 'evaluation';
}

/**
 * The one formatter for "expected X but received Y" messages, so they read the same everywhere.
 *
 * @example
 * ```ts
 * expected('a positive integer', 'threads', -1); // "Expected a positive integer for threads but received -1"
 * ```
 */
export function expected(what: string, forWhat: string, received: unknown): string {
  return `Expected ${what} for ${forWhat} but received ${describe(received)}`;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `[${v.map(describe).join(', ')}]`;
  if (v instanceof Uint8Array) return `${v.constructor.name}(${v.length})`;
  try {
    return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

/** Lists what exists, for lookups that fail: `(one of: a, b, c)` or `(there are none)`; long lists are cut. */
export function oneOf(names: Iterable<string>, max = 12): string {
  const all = [...names];
  if (all.length === 0) return '(there are none)';
  const shown = all.slice(0, max).map((n) => JSON.stringify(n)).join(', ');
  return `(one of: ${shown}${all.length > max ? `, … ${all.length - max} more` : ''})`;
}
