/**
 * Synthetic inputs for timing a model: random tensors of the right type and shape, the same for the same seed.
 * Latency does not depend on the values for the ops onnxpress deals with (dense kernels), but it does on shapes,
 * so every dimension must be resolved: the first symbolic dimension of each input is the batch, any other needs
 * a value in `dims` (by its name), or the call fails naming the input and the dimension.
 */
import { OptionsError } from '../errors.js';
import { DTYPES, elementCount, type DType } from '../onnx/dtype.js';
import type { Model } from '../onnx/ir.js';
import type { RunTensor } from '../onnx/runner.js';
import { mulberry32 } from '../util/random.js';

export interface SyntheticFeedsOptions {
  /** Batch size: the size of each input's first dimension when that dimension is symbolic or unknown (default 1). */
  batch?: number;
  /** Sizes of other symbolic dimensions, by name (`{ sequence: 128 }`). */
  dims?: Record<string, number>;
  /** Seed of the values (default 0). */
  seed?: number;
}

/** The graph inputs that must be fed (initializers listed as inputs, as old exporters do, are not). */
export function feedInputs(model: Model) {
  return model.graph.inputs.filter((v) => !v.initializer);
}

/**
 * Random feeds for every graph input: floats uniform in [-1, 1), integers in [0, 10), booleans half true.
 *
 * @example
 * ```ts
 * const feeds = syntheticFeeds(model, { batch: 32 });
 * await runner.run(feeds);
 * ```
 */
export function syntheticFeeds(model: Model, options: SyntheticFeedsOptions = {}): Record<string, RunTensor> {
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new OptionsError(`batch must be a positive integer, got ${batch}`);
  const rand = mulberry32(options.seed ?? 0);
  const feeds: Record<string, RunTensor> = {};
  for (const input of feedInputs(model)) {
    const type = input.type;
    if (!type || type.kind !== 'tensor' || !type.elemType) throw new OptionsError(`input "${input.name}" has no tensor type: cannot make data for it`);
    if (!type.shape) throw new OptionsError(`input "${input.name}" has an unknown rank: cannot make data for it`);
    const dims = type.shape.map((d, i) => {
      if (typeof d === 'number') {
        if (i === 0 && options.batch !== undefined && d !== batch) {
          throw new OptionsError(`input "${input.name}" has a fixed batch dimension of ${d}: it cannot run at batch ${batch}`);
        }
        return d;
      }
      if (typeof d === 'string' && options.dims?.[d] !== undefined) return options.dims[d]!;
      if (i === 0) return batch;
      throw new OptionsError(`input "${input.name}" dimension ${i} (${d === null ? 'unknown' : `"${d}"`}) has no size: give it in dims${typeof d === 'string' ? ` as { "${d}": N }` : ''}`);
    });
    feeds[input.name] = randomTensor(type.elemType, dims, rand, input.name);
  }
  return feeds;
}

function randomTensor(dtype: DType, dims: number[], rand: () => number, name: string): RunTensor {
  const n = elementCount(dims);
  const info = DTYPES[dtype];
  if (dtype === 'float32' || dtype === 'float64') {
    const a = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
    return { dtype, dims, data: a };
  }
  if (dtype === 'bool') {
    const a = new Uint8Array(n);
    for (let i = 0; i < n; i++) a[i] = rand() < 0.5 ? 1 : 0;
    return { dtype, dims, data: a };
  }
  if (dtype === 'int64' || dtype === 'uint64') {
    const a = dtype === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
    for (let i = 0; i < n; i++) a[i] = BigInt(Math.floor(rand() * 10));
    return { dtype, dims, data: a };
  }
  if (!info.float && info.array && info.bits >= 8) {
    const a = new info.array(n);
    for (let i = 0; i < n; i++) a[i] = Math.floor(rand() * 10);
    return { dtype, dims, data: a };
  }
  throw new OptionsError(`input "${name}" is of type ${dtype}: synthetic data is made for float32/float64, integer and bool inputs only`);
}
