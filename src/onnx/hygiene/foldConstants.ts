/**
 * `hygiene.foldConstants`: replaces computations on constants by their results.
 *
 * 1. `Constant` nodes become initializers (`value`, `value_float(s)`, `value_int(s)`, `value_string(s)`); those
 *    holding a `sparse_value` are left as they are, and so are those whose output is a graph output.
 * 2. `op(c1, c2, …)` with every input constant -> an initializer holding its result, computed by onnxruntime (CPU,
 *    one thread) on a small model made of just the constant nodes, so the result is exactly what the runtime
 *    would have computed. Chains fold at once. Left alone: non-deterministic ops (RandomNormal, Bernoulli, …),
 *    ops with subgraphs, ops outside the ai.onnx and ai.onnx.ml domains, ops that make sequences or optionals,
 *    nodes whose output is a graph output (its name must stay; an initializer cannot be renamed onto it), and
 *    results larger than `maxOutputBytes` and `maxGrowth` times the node's inputs (ConstantOfShape, Expand and
 *    Tile are checked before they run; others after). The size is compared with the stored constants the result
 *    is made from, so a Reshape of a blow-up counts as one.
 * 3. `Shape(x)` with x's shape fully static (from the model's value_info or input types) -> that shape, when
 *    `foldShapes` is on.
 *
 * Only the main graph is folded; subgraphs are left as they are.
 */
import { z } from 'zod';
import { PassError } from '../../errors.js';
import type { Pass, PassContext, PassResult } from '../../pass.js';
import { byteLength, elementCount, type DType } from '../dtype.js';
import { Model, type Node, type Value } from '../ir.js';
import { Runner, type RunTensor } from '../runner.js';
import { Tensor } from '../tensor.js';
import { addConstant, adoptName, constantNodeTensor, constantOf, isOnnxDomain, replaceByConstant } from './constants.js';

/**
 * Options of `hygiene.foldConstants`.
 *
 * @example
 * ```ts
 * foldConstantsOptions.parse({ maxOutputBytes: 16 << 20, foldShapes: false });
 * ```
 */
export const foldConstantsOptions = z.object({
  constantNodes: z.boolean().default(true).describe('Turn Constant nodes into initializers first'),
  foldShapes: z.boolean().default(true).describe('Replace Shape(x) by its value when x has a fully static shape'),
  maxOutputBytes: z
    .number()
    .int()
    .nonnegative()
    .default(1 << 20)
    .describe('A result larger than this many bytes and than maxGrowth times its inputs is not folded (ConstantOfShape/Expand/Tile blow-ups)'),
  maxGrowth: z.number().positive().default(2).describe('See maxOutputBytes: how many times its inputs’ size a large result may be'),
});
export type FoldConstantsOptions = z.input<typeof foldConstantsOptions>;
type Options = z.output<typeof foldConstantsOptions>;

/**
 * Ops whose result changes from run to run (or that sample with a seed, which a constant would freeze); never folded.
 *
 * @example
 * ```ts
 * NON_DETERMINISTIC_OPS.has('RandomNormal'); // true
 * ```
 */
export const NON_DETERMINISTIC_OPS: ReadonlySet<string> = new Set([
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'Dropout',
]);
/** Ops whose outputs are sequences or optionals, which initializers cannot hold. */
const NON_TENSOR_OPS: ReadonlySet<string> = new Set(['SequenceConstruct', 'SequenceEmpty', 'SplitToSequence', 'SequenceInsert', 'SequenceErase', 'Optional']);
const FOLD_DOMAINS: ReadonlySet<string> = new Set(['', 'ai.onnx', 'ai.onnx.ml']);
/** Result dtypes onnxruntime-node hands back as plain typed arrays (or strings). */
const RESULT_DTYPES: ReadonlySet<DType> = new Set<DType>(['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string']);

/** Bytes a tensor takes (strings: their UTF-8 bytes). */
function sizeOf(t: Tensor): number {
  return t.dtype === 'string' ? t.strings().reduce((a, s) => a + s.byteLength, 0) : t.byteLength;
}

function tooBig(outBytes: number, inBytes: number, o: Options): boolean {
  return outBytes > o.maxOutputBytes && outBytes > o.maxGrowth * inBytes;
}

/** A shape tensor's values as numbers. */
const dimsOf = (t: Tensor | undefined): number[] | undefined => (t && (t.dtype === 'int64' || t.dtype === 'int32') ? t.toNumbers() : undefined);

/** Elements the blow-up ops would make, worked out from their constant inputs before running them; undefined when unknown. */
function predictedElements(n: Node, input: (i: number) => Tensor | undefined): number | undefined {
  switch (n.opType) {
    case 'ConstantOfShape': {
      const d = dimsOf(input(0));
      return d ? elementCount(d) : undefined;
    }
    case 'Expand': {
      const x = input(0);
      const d = dimsOf(input(1));
      if (!x || !d) return undefined;
      const r = Math.max(x.dims.length, d.length);
      let count = 1;
      for (let i = 0; i < r; i++) count *= Math.max(x.dims[x.dims.length - r + i] ?? 1, d[d.length - r + i] ?? 1);
      return count;
    }
    case 'Tile': {
      const x = input(0);
      const reps = dimsOf(input(1));
      return x && reps ? x.size * elementCount(reps) : undefined;
    }
    default:
      return undefined;
  }
}

/** An onnxruntime result as a Tensor (copied: onnxruntime may reuse its buffers), or a reason it cannot be one. */
function toTensor(r: RunTensor): Tensor | string {
  if (!RESULT_DTYPES.has(r.dtype)) return `its result has dtype ${r.dtype}`;
  if (r.dtype === 'string') return Tensor.fromStrings(r.dims, r.data as string[]);
  const d = r.data as Exclude<RunTensor['data'], string[]>;
  if (!ArrayBuffer.isView(d) || d.byteLength !== byteLength(r.dtype, elementCount(r.dims))) return `its result is not a ${r.dtype} tensor`;
  return Tensor.fromBytes(r.dtype, r.dims, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
}

/**
 * Runs `nodes` (in order) on onnxruntime, with `inputs` as initializers; returns every output's value, or the
 * reason it failed.
 */
async function evaluate(model: Model, nodes: readonly Node[], inputs: ReadonlyMap<Value, Tensor>): Promise<Map<Value, Tensor> | string> {
  const m = new Model();
  m.irVersion = Math.max(model.irVersion, 4);
  for (const [d, v] of model.opsetImports) m.opsetImports.set(d, v);
  const g = m.graph;
  for (const [v, t] of inputs) g.addInitializer(v.name, t);
  const outs: [Value, Value][] = [];
  for (const n of nodes) {
    const copy = g.addNode({
      opType: n.opType,
      domain: n.domain,
      name: n.name,
      inputs: n.inputs.map((v) => (v ? g.value(v.name) : null)),
      outputs: n.outputs.map((v) => v?.name ?? null),
      attributes: Object.fromEntries(n.attributes),
    });
    n.outputs.forEach((v, i) => {
      if (v) outs.push([v, copy.output(i)]);
    });
  }
  g.outputs.push(...outs.map(([, inner]) => inner));
  let runner: Runner | undefined;
  try {
    runner = await Runner.create(m, { threads: 1, graphOptimizationLevel: 'disabled' });
    const r = await runner.run({});
    const result = new Map<Value, Tensor>();
    for (const [outer, inner] of outs) {
      const t = toTensor(r[inner.name]!);
      if (typeof t === 'string') return `"${outer.name}": ${t}`;
      result.set(outer, t);
    }
    return result;
  } catch (e) {
    return (e as Error).message.split('\n')[0]!;
  } finally {
    await runner?.release();
  }
}

/** Step 1: Constant nodes -> initializers. */
function constantsToInitializers(model: Model, notes: string[]): number {
  const g = model.graph;
  let changed = 0;
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Constant' || !isOnnxDomain(n) || n.outputs.length !== 1) continue;
    const y = n.outputs[0];
    if (!y) continue;
    const t = constantNodeTensor(n);
    if (!t) {
      notes.push(`left ${n}: it holds a sparse tensor (or an attribute reference)`);
      continue;
    }
    if (y.isGraphOutput) {
      notes.push(`left ${n}: its output "${y.name}" is a graph output`);
      continue;
    }
    const name = y.name;
    const init = replaceByConstant(y, t); // Constant(value=t) -> initializer t
    g.removeNode(n);
    adoptName(init, name);
    changed++;
  }
  return changed;
}

/**
 * The `hygiene.foldConstants` pass; its cases are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { modified, notes } = await runPass(foldConstantsPass, model, { maxOutputBytes: 4 << 20 });
 * ```
 */
export const foldConstantsPass: Pass<typeof foldConstantsOptions> = {
  name: 'hygiene.foldConstants',
  description: 'Turns Constant nodes into initializers and folds nodes whose inputs are all constant, evaluating them with onnxruntime',
  inPlace: true,
  options: foldConstantsOptions,
  async run(model: Model, options, ctx: PassContext): Promise<PassResult> {
    const g = model.graph;
    const notes: string[] = [];
    let modified = options.constantNodes ? constantsToInitializers(model, notes) > 0 : false;

    // every node computable from constants, in graph order; Shape of a static shape is computed here directly
    const known = new Map<Value, Tensor | undefined>(); // value -> its constant data (undefined: computed by onnxruntime)
    const valueOf = (v: Value | null | undefined): Tensor | undefined => (v ? (known.has(v) ? known.get(v) : constantOf(v)) : undefined);
    const isKnown = (v: Value) => known.has(v) || constantOf(v) !== undefined;
    const candidates: Node[] = [];
    const direct = new Set<Node>();
    // the size limit compares a result with the constants it is made from, not with its direct inputs, so that
    // Reshape(Range(…)) counts as the blow-up that Range is
    const sources = new Map<Value, ReadonlySet<Value>>(); // computed value -> the stored constants it derives from
    const sourcesOf = (v: Value): ReadonlySet<Value> => sources.get(v) ?? new Set([v]);
    const inputBytes = new Map<Node, number>();
    for (const n of g.nodes) {
      if (n.opType === 'Constant' && isOnnxDomain(n)) continue;
      const ins = n.inputs.filter((v): v is Value => v !== null);
      if (options.foldShapes && n.opType === 'Shape' && isOnnxDomain(n) && ins.length === 1 && n.outputs[0]) {
        const shape = ins[0]!.shape;
        const t = valueOf(ins[0]);
        const dims = t ? t.dims : shape;
        if (dims && dims.every((d) => typeof d === 'number')) {
          const rank = dims.length;
          const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + rank : i, 0), rank);
          const start = clamp(n.getInt('start', 0));
          const end = clamp(n.getInt('end', rank));
          const sliced = (dims as number[]).slice(start, Math.max(start, end));
          known.set(n.outputs[0], Tensor.from('int64', [sliced.length], sliced.map((d) => BigInt(d)))); // case 3
          candidates.push(n);
          direct.add(n);
          inputBytes.set(n, 0);
          sources.set(n.outputs[0], new Set());
          continue;
        }
      }
      if (!ins.length || !ins.every(isKnown)) continue;
      const why = !FOLD_DOMAINS.has(n.domain)
        ? `its domain "${n.domain}" is not ai.onnx`
        : NON_DETERMINISTIC_OPS.has(n.opType)
          ? 'it is non-deterministic'
          : n.subgraphs().length
            ? 'it has subgraphs'
            : NON_TENSOR_OPS.has(n.opType)
              ? 'it makes a sequence or an optional'
              : undefined;
      if (why) {
        notes.push(`left ${n}: ${why}`);
        continue;
      }
      const from = new Set(ins.flatMap((v) => [...sourcesOf(v)]));
      const inBytes = [...from].reduce((a, v) => a + sizeOf(constantOf(v)!), 0);
      const predicted = predictedElements(n, (i) => valueOf(n.inputs[i]));
      const outType = n.opType === 'ConstantOfShape' ? (n.getTensor('value')?.dtype ?? 'float32') : valueOf(ins[0])?.dtype;
      if (predicted !== undefined && outType && outType !== 'string' && tooBig(byteLength(outType, predicted), inBytes, options)) {
        notes.push(`left ${n}: its result would take ${byteLength(outType, predicted)} bytes (limit ${options.maxOutputBytes}, or ${options.maxGrowth}x the constants it is made from)`);
        continue;
      }
      candidates.push(n);
      inputBytes.set(n, inBytes);
      for (const o of n.outputs) {
        if (!o) continue;
        known.set(o, undefined);
        sources.set(o, from);
      }
    }
    if (!candidates.length) return { model, modified, notes };

    // evaluate everything at once; when onnxruntime rejects the batch, one node at a time to find the culprits
    const computed = new Map<Value, Tensor>();
    for (const [v, t] of known) if (t) computed.set(v, t);
    const toRun = candidates.filter((n) => !direct.has(n));
    const feedsFor = (nodes: readonly Node[]) => {
      const produced = new Set(nodes.flatMap((n) => n.outputs));
      const feeds = new Map<Value, Tensor>();
      for (const n of nodes) for (const v of n.inputs) if (v && !produced.has(v)) feeds.set(v, computed.get(v) ?? constantOf(v)!);
      return feeds;
    };
    const failed = new Set<Node>();
    if (toRun.length) {
      if (ctx.signal?.aborted) throw new PassError(`Pass hygiene.foldConstants was cancelled`);
      const all = await evaluate(model, toRun, feedsFor(toRun));
      if (typeof all !== 'string') {
        for (const [v, t] of all) computed.set(v, t);
      } else {
        for (const n of toRun) {
          if (n.inputs.some((v) => v && !computed.has(v) && !constantOf(v))) {
            failed.add(n); // an input could not be computed
            continue;
          }
          const one = await evaluate(model, [n], feedsFor([n]));
          if (typeof one === 'string') {
            notes.push(`left ${n}: onnxruntime could not evaluate it (${one})`);
            failed.add(n);
          } else for (const [v, t] of one) computed.set(v, t);
        }
      }
    }

    // which folded nodes go: not failed, no graph output, result not too large for its inputs
    const removable = new Set<Node>();
    for (const n of candidates) {
      if (failed.has(n)) continue;
      const outs = n.outputs.filter((v): v is Value => v !== null);
      if (outs.some((v) => v.isGraphOutput)) {
        notes.push(`left ${n}: its output is a graph output`);
        continue;
      }
      const inBytes = inputBytes.get(n)!;
      const outBytes = outs.reduce((a, v) => a + sizeOf(computed.get(v)!), 0);
      if (tooBig(outBytes, inBytes, options)) {
        notes.push(`left ${n}: its result takes ${outBytes} bytes (limit ${options.maxOutputBytes}, or ${options.maxGrowth}x the constants it is made from)`);
        continue;
      }
      removable.add(n);
    }
    // every value a remaining node (or a subgraph) reads from a removable node becomes an initializer
    const renames: [Value, string][] = [];
    for (const n of candidates) {
      if (!removable.has(n)) continue;
      for (const v of n.outputs) {
        const readers = v ? v.uses.filter((u) => !removable.has(u.node)) : [];
        if (!v || !readers.length) continue;
        const init = addConstant(g, `${v.name}_const`, computed.get(v)!);
        for (const u of readers) u.node.setInput(u.index, init); // op(constants) -> initializer
        renames.push([init, v.name]);
      }
    }
    let removed = 0;
    for (const n of [...candidates].reverse()) {
      if (!removable.has(n) || !n.outputs.every((v) => !v || (!v.uses.length && !v.isGraphOutput))) continue;
      g.removeNode(n);
      removed++;
    }
    for (const [init, name] of renames) adoptName(init, name);
    const folded = renames.length;
    if (folded || removed) {
      notes.unshift(`folded ${removed} node${removed === 1 ? '' : 's'} into ${folded} initializer${folded === 1 ? '' : 's'}`);
      modified = true;
    }
    return { model, modified, notes };
  },
};
