/**
 * The one onnxruntime-node wrapper: every inference onnxpress does goes through `Runner`.
 *
 * - Execution providers `cpu`, `webgpu` (bundled) and `cuda` (when its files are installed). onnxruntime does not
 *   fall back by itself — a session asking for `['webgpu', 'cpu']` on a machine with no GPU adapter fails
 *   outright — so an unavailable provider becomes an EvaluationError that says why and what to do.
 * - Thread spin-waiting is off: on a busy machine spinning threads halve throughput.
 * - Any intermediate tensor can be read (for calibration and debugging): it is added as an output of a copy of
 *   the model before the session is made.
 */
import ort from 'onnxruntime-node';
import { EvaluationError, expected, oneOf } from '../errors.js';
import type { DType, TypedArray } from './dtype.js';
import { Model } from './ir.js';
import { loadModel } from './io.js';
import { decodeModelProto, encodeModel, modelFromProto } from './proto.js';
import { Tensor } from './tensor.js';

/** Execution providers onnxpress knows how to ask for. */
export type ExecutionProvider = 'cpu' | 'webgpu' | 'cuda';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['cpu', 'webgpu', 'cuda'];

/** Options for making a Runner. */
export interface RunnerOptions {
  /** Execution provider (default `cpu`). */
  ep?: ExecutionProvider;
  /** Intra-op threads (default: onnxruntime's choice, the number of physical cores). */
  threads?: number;
  /** onnxruntime graph optimization level (default `all`). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * onnxruntime's memory pattern (default true, onnxruntime's default): it plans one block for a run's tensors from
   * the first runs, which then cost 2–4× a steady run (MobileNet-style fixture at batch 32: 31 and 33 ms, then 12).
   * Short-lived sessions that run a fixed number of batches (calibration) save that by turning it off; latency
   * measurements keep onnxruntime's default, which is what a deployed model gets.
   */
  memPattern?: boolean;
  /** Intermediate tensors to expose as extra outputs, by value name. */
  extraOutputs?: readonly string[];
  /** Prints every node's inputs and outputs while running (onnxruntime verbose logging); for debugging. */
  debug?: boolean;
  /**
   * Where onnxruntime writes the model as it runs it, after its graph optimizations (to see what it fused, e.g.
   * DynamicQuantizeMatMul). onnxruntime writes the file while making the session.
   */
  optimizedModelFilePath?: string;
  /**
   * Turns on onnxruntime's profiler: per-node kernel times are written to `<profile>_<timestamp>.json` when
   * `endProfiling` is called (see `profileNodes` in profile.ts, which reads them).
   */
  profile?: string;
}

/** A tensor going in or out of onnxruntime. */
export interface RunTensor {
  dtype: DType;
  dims: readonly number[];
  data: TypedArray | string[];
}

/** Description of a model input or output as onnxruntime sees it. */
export interface IOInfo {
  name: string;
  dtype?: string;
  shape?: readonly (number | string)[];
}

const SUPPORTED_ORT = new Set(['float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'float64', 'uint32', 'uint64', 'int4', 'uint4']);

/** Which execution providers this onnxruntime-node build lists (whether a device is present is another matter). */
export function listedProviders(): string[] {
  const backends = (ort as unknown as { listSupportedBackends?: () => { name: string }[] }).listSupportedBackends?.();
  return backends ? backends.map((b) => b.name) : ['cpu'];
}

/**
 * An onnxruntime session over a model.
 *
 * @example
 * ```ts
 * const runner = await Runner.create(model, { ep: 'cpu', threads: 1 });
 * const out = await runner.run({ input: { dtype: 'float32', dims: [1, 784], data: new Float32Array(784) } });
 * out.logits.data; // Float32Array
 * await runner.release();
 * ```
 */
export class Runner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly ep: ExecutionProvider,
    readonly inputs: IOInfo[],
    readonly outputs: IOInfo[],
  ) {}

  /**
   * Makes a session from a Model, model bytes, or a model file's path. Give the path for a model with external
   * data: onnxruntime reads the data files beside the model file, and refuses them for a model given as bytes.
   */
  static async create(model: Model | Uint8Array | string, options: RunnerOptions = {}): Promise<Runner> {
    const ep = options.ep ?? 'cpu';
    if (!EXECUTION_PROVIDERS.includes(ep)) throw new EvaluationError(`${expected(`an execution provider ${oneOf(EXECUTION_PROVIDERS)}`, 'ep', ep)}`);
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1)) {
      throw new EvaluationError(expected('a positive integer', 'threads', options.threads));
    }
    let bytes: Uint8Array | string;
    if (options.extraOutputs?.length) {
      const copy =
        model instanceof Model ? modelFromProto(decodeModelProto(encodeModel(model))) : typeof model === 'string' ? await loadModel(model) : modelFromProto(decodeModelProto(model));
      for (const name of options.extraOutputs) {
        const v = copy.graph.values.get(name);
        if (!v) throw new EvaluationError(`Cannot read intermediate tensor "${name}": no such value in the main graph ${oneOf(copy.graph.values.keys())}`);
        if (!copy.graph.outputs.includes(v)) copy.graph.outputs.push(v);
      }
      bytes = encodeModel(copy);
    } else {
      bytes = model instanceof Model ? encodeModel(model) : model;
    }
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [ep],
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      // errors reach the caller as exceptions; onnxruntime's own error log would only repeat them on stderr
      logSeverityLevel: options.debug ? 0 : 4,
      logVerbosityLevel: options.debug ? 1 : 0,
      // spinning threads halve throughput on a busy machine (measured); see shared notes
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
    if (options.memPattern === false) sessionOptions.enableMemPattern = false;
    if (options.optimizedModelFilePath) sessionOptions.optimizedModelFilePath = options.optimizedModelFilePath;
    if (options.profile) {
      sessionOptions.enableProfiling = true;
      sessionOptions.profileFilePrefix = options.profile;
    }
    if (options.threads) {
      sessionOptions.intraOpNumThreads = options.threads;
      sessionOptions.interOpNumThreads = 1;
    }
    let session: ort.InferenceSession;
    try {
      session = typeof bytes === 'string' ? await ort.InferenceSession.create(bytes, sessionOptions) : await ort.InferenceSession.create(bytes, sessionOptions);
    } catch (e) {
      throw providerError(ep, e);
    }
    const meta = (list: readonly unknown[], names: readonly string[]): IOInfo[] =>
      names.map((name, i) => {
        const m = list[i] as { isTensor?: boolean; type?: string; shape?: (number | string)[] } | undefined;
        return { name, dtype: m?.type, shape: m?.shape };
      });
    const s = session as ort.InferenceSession & { inputMetadata?: readonly unknown[]; outputMetadata?: readonly unknown[] };
    return new Runner(session, ep, meta(s.inputMetadata ?? [], session.inputNames), meta(s.outputMetadata ?? [], session.outputNames));
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the model. Feeds are keyed by input name; `outputs` picks which outputs to fetch (default all).
   * Wrong names or shapes give an EvaluationError naming the input.
   */
  async run(feeds: Record<string, RunTensor | Tensor>, outputs?: readonly string[]): Promise<Record<string, RunTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const f = feeds[name];
      if (!f) throw new EvaluationError(`Missing feed for model input "${name}" (inputs are ${oneOf(this.session.inputNames)}; given ${oneOf(Object.keys(feeds))})`);
      ortFeeds[name] = toOrt(name, f);
    }
    for (const name of Object.keys(feeds)) {
      if (!this.session.inputNames.includes(name)) throw new EvaluationError(`Feed "${name}" is not a model input ${oneOf(this.session.inputNames)}`);
    }
    const fetch = outputs ?? this.session.outputNames;
    for (const o of fetch) {
      if (!this.session.outputNames.includes(o)) throw new EvaluationError(`"${o}" is not an output of this session ${oneOf(this.session.outputNames)}`);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run(ortFeeds, [...fetch]);
    } catch (e) {
      throw new EvaluationError(`onnxruntime (${this.ep}) failed to run the model: ${firstLine(e)}${shapeHint(this.inputs, ortFeeds)}`, { cause: e });
    }
    const out: Record<string, RunTensor> = {};
    for (const name of fetch) {
      const t = result[name] as ort.Tensor;
      out[name] = { dtype: t.type as DType, dims: [...t.dims], data: t.data as TypedArray | string[] };
    }
    return out;
  }

  /** Stops onnxruntime's profiler (made with `profile`) and has it write its file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

function toOrt(name: string, f: RunTensor | Tensor): ort.Tensor {
  let dtype: DType;
  let dims: readonly number[];
  let data: TypedArray | string[];
  if (f instanceof Tensor) {
    dtype = f.dtype;
    dims = f.dims;
    data = dtype === 'string' ? f.strings().map((b) => new TextDecoder().decode(b)) : f.data();
  } else {
    ({ dtype, dims, data } = f);
  }
  if (!SUPPORTED_ORT.has(dtype)) throw new EvaluationError(`Feed "${name}" has dtype ${dtype}, which onnxruntime-node cannot take as an input`);
  try {
    return new ort.Tensor(dtype as ort.Tensor.Type, data as ort.Tensor.DataType, [...dims]);
  } catch (e) {
    throw new EvaluationError(`Feed "${name}": ${firstLine(e)}`, { cause: e });
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

function shapeHint(inputs: IOInfo[], feeds: Record<string, ort.Tensor>): string {
  const parts = inputs
    .filter((i) => i.shape && feeds[i.name])
    .map((i) => `"${i.name}" expects [${i.shape!.join(', ')}] ${i.dtype ?? ''}, given [${feeds[i.name].dims.join(', ')}] ${feeds[i.name].type}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

function providerError(ep: ExecutionProvider, e: unknown): EvaluationError {
  const msg = firstLine(e);
  if (ep === 'webgpu' && /adapter|webgpu/i.test(msg)) {
    return new EvaluationError(`Execution provider "webgpu" is unavailable here: ${msg}. This machine has no usable GPU adapter; use --ep cpu.`, { cause: e });
  }
  if (ep === 'cuda' && /shared library|cuda|cudnn|providers_cuda/i.test(msg)) {
    return new EvaluationError(
      `Execution provider "cuda" is unavailable here: ${msg}. Install onnxruntime-node's CUDA files with ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node (needs CUDA 12 and cuDNN 9), or use --ep cpu.`,
      { cause: e },
    );
  }
  return new EvaluationError(`onnxruntime could not load the model on "${ep}": ${msg}`, { cause: e });
}

/**
 * Whether a provider can actually make a session here (it tries a one-node model).
 *
 * @example
 * ```ts
 * const { available, reason } = await probeProvider('webgpu');
 * ```
 */
export async function probeProvider(ep: ExecutionProvider): Promise<{ ep: ExecutionProvider; available: boolean; reason?: string }> {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const x = m.graph.declareValue('x');
  x.type = { kind: 'tensor', elemType: 'float32', shape: [1] };
  m.graph.inputs.push(x);
  const n = m.graph.addNode({ opType: 'Relu', inputs: [x], outputs: ['y'] });
  n.output().type = { kind: 'tensor', elemType: 'float32', shape: [1] };
  m.graph.outputs.push(n.output());
  try {
    const r = await Runner.create(m, { ep });
    await r.release();
    return { ep, available: true };
  } catch (e) {
    return { ep, available: false, reason: (e as Error).message };
  }
}
