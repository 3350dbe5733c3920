/**
 * `convert.fp16`: float16 weights and compute.
 *
 * Every node is either converted (computes in float16) or kept in float32; tensors follow the nodes:
 *
 * 1. Kept in float32: ops in `FLOAT32_OPS` (see `fp16/ops.ts` for why each) or in `blockOps`, nodes in
 *    `blockNodes`, ops of other domains, nodes that read or make sequences, maps or optionals, nodes with an input
 *    or output of unknown element type (after `inferShapes`), and everything inside the subgraphs of a kept node.
 * 2. Integer arithmetic done in float stays float32: a Cast from an integer type to float32, and every node whose
 *    float inputs all come from such casts or from small constants (PyTorch's shape arithmetic, e.g. a Resize
 *    size computed as `Cast(Shape(x)) * 2`): float16 holds integers exactly only up to 2048.
 * 3. A Cast to float32 that a converted node reads becomes a Cast to float16; one whose output only float32
 *    readers use stays (that is how the Casts this pass inserts before kept nodes survive a second run).
 *    EyeLike's dtype and ConstantOfShape's value follow the same way.
 * 4. Initializers and Constant values become float16 when every reader wants float16; a constant that float16 and
 *    float32 readers share keeps its float32 tensor and gets a float16 copy, so neither side loses anything.
 *    Values beyond ±65504 are clamped (or become ±inf when `clamp` is off) and named in the notes; values below
 *    float16's smallest subnormal (2^-24) round to zero and are counted; subnormals are kept.
 * 5. Where a float16 value meets a float32 reader (or the reverse) a Cast is inserted in the reader's graph, one
 *    per value, direction and graph. Inputs that a converted op keeps float32 (`float32Inputs`: Resize's scales
 *    and roi) and inputs that take any type (`ANY_TYPE_INPUTS`: Cast, Shape) are respected.
 * 6. Graph inputs and outputs of the main graph become float16, unless `keepIoTypes`: then they stay float32 and
 *    Casts sit at the borders, the output Cast taking the output's name so the model's interface is unchanged.
 *    Subgraph inputs and outputs (If branches, Loop and Scan bodies) follow the node that holds them.
 *
 * The pass returns a new model (the input is untouched) and reports `modified: false` when there is no float32
 * left to convert, so a second run changes nothing.
 */
import { z } from 'zod';
import { OptionsError, PassError, oneOf } from '../errors.js';
import { float32ToFloat16 } from '../onnx/codecs.js';
import { DTYPES, type DType } from '../onnx/dtype.js';
import { addConstant, constantNodeTensor, isConstantInitializer, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { inferShapes } from '../onnx/infer/index.js';
import { attr, type Graph, type Model, type Node, type Value, type ValueType } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';
import { parseOptions, type Pass, type PassResult } from '../pass.js';
import { ANY_TYPE_INPUTS, FLOAT32_OPS, FLOAT32_OUTPUTS, float32Inputs } from './fp16/ops.js';

/**
 * Options of `convert.fp16`.
 *
 * @example
 * ```ts
 * fp16Options.parse({ keepIoTypes: true, blockOps: ['Softmax'] });
 * ```
 */
export const fp16Options = z.object({
  keepIoTypes: z.boolean().default(false).describe('Keep the graph inputs and outputs float32, with Cast nodes at the borders'),
  blockOps: z.array(z.string().min(1)).default([]).describe('Op types kept in float32, besides the built-in list of ops that are unsafe or unsupported in float16'),
  blockNodes: z.array(z.string().min(1)).default([]).describe('Names of nodes kept in float32'),
  clamp: z.boolean().default(true).describe('Clamp weights beyond the float16 range (|x| > 65504) to ±65504; when off they become ±inf'),
});
export type Fp16Options = z.input<typeof fp16Options>;

/** A constant tensor with values beyond the float16 range. */
export interface ClampedTensor {
  /** Initializer name, Constant output name, or `<node>.value` for ConstantOfShape. */
  name: string;
  /** Elements with |x| > 65504 (finite). */
  count: number;
  /** The largest such |x|. */
  maxAbs: number;
}

/** What `toFloat16` returns. */
export interface Fp16Result {
  model: Model;
  modified: boolean;
  notes: string[];
  /** Tensors whose out-of-range values were clamped to ±65504 (empty when `clamp` is off). */
  clamped: ClampedTensor[];
}

const FP16_MAX = 65504;
/** Constants up to this many elements count as "small" for rule 2 (scalars and short vectors in shape arithmetic). */
const SMALL_CONSTANT = 16;
const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;
const FLOAT_CODES = new Set([1, 10, 11, 16]);

type Want = 'float16' | 'float32' | 'any';

/** Rule 2's reasons; the outputs of nodes kept for them count as integers in float. */
const INT_CAST = 'it casts integers to float, which float16 holds exactly only up to 2048';
const INT_ARITHMETIC = 'it computes on integers cast to float (shape arithmetic), which float16 holds exactly only up to 2048';

interface State {
  readonly opts: z.output<typeof fp16Options>;
  readonly dtype: Map<Value, DType | undefined>;
  readonly converted: Set<Node>;
  readonly kept: Map<Node, string>;
  readonly intDerived: Set<Value>;
  /** float32 values (by original type) that become float16. */
  readonly changed: Set<Value>;
  readonly casts: Map<Graph, Map<Value, Map<Want, Value>>>;
  readonly notes: string[];
  readonly clamped: ClampedTensor[];
  underflow: { values: number; tensors: number };
  /** Tensors converted to float16 and their float32 bytes. */
  halved: { tensors: number; bytes: number };
  edits: number;
}

/**
 * The `convert.fp16` pass; its rules are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { model: half } = await runPass(fp16Pass, model, { keepIoTypes: true });
 * ```
 */
export const fp16Pass: Pass<typeof fp16Options> = {
  name: 'convert.fp16',
  description: 'Converts float32 weights and compute to float16, keeping unsafe ops in float32 behind Casts',
  inPlace: false,
  options: fp16Options,
  run(model, options): PassResult {
    const r = convertFp16(model, options);
    return { model: r.model, modified: r.modified, notes: r.notes };
  },
};

/**
 * Converts a model to float16 (see `fp16Pass`); returns a new model, or the same one with `modified: false` when
 * nothing is float32.
 *
 * @example
 * ```ts
 * const { model: half, clamped, notes } = toFloat16(await loadModel('model.onnx'), { keepIoTypes: true });
 * await saveModel(half, 'model.fp16.onnx');
 * ```
 */
export function toFloat16(model: Model, options: Fp16Options = {}): Fp16Result {
  return convertFp16(model, parseOptions(fp16Options, options, 'convert.fp16'));
}

function convertFp16(input: Model, opts: z.output<typeof fp16Options>): Fp16Result {
  checkBlockNodes(input, opts.blockNodes);
  const opset = input.opset('') ?? 21;
  if (opset < 6) {
    // Cast-1 takes its target type as a string, and onnxruntime's own float16 casts fail on such models
    throw new PassError(`convert.fp16 needs opset 6 or later for its Cast nodes, but the model imports opset ${opset}: raise the model's opset first`);
  }
  // work on a copy: the caller's model stays as it was, also when this throws half-way
  const model = modelFromProto(decodeModelProto(encodeModel(input)));
  const st: State = {
    opts,
    dtype: new Map(),
    converted: new Set(),
    kept: new Map(),
    intDerived: new Set(),
    changed: new Set(),
    casts: new Map(),
    notes: [],
    clamped: [],
    underflow: { values: 0, tensors: 0 },
    halved: { tensors: 0, bytes: 0 },
    edits: 0,
  };
  collectTypes(model, st);
  decide(model.graph, st, false);
  reviewCasts(model.graph, st);
  markChanged(model.graph, st);
  convertConstants(model, st);
  rewrite(model, st);
  if (st.edits === 0) return { model: input, modified: false, notes: [], clamped: [] };
  model.graph.validate();
  summarize(st);
  return { model, modified: true, notes: st.notes, clamped: st.clamped };
}

function checkBlockNodes(model: Model, names: readonly string[]): void {
  if (!names.length) return;
  const all = new Set<string>();
  for (const n of model.graph.allNodes()) all.add(n.name);
  const missing = names.filter((n) => !all.has(n));
  if (missing.length) throw new OptionsError(`blockNodes: no node named ${missing.map((n) => JSON.stringify(n)).join(', ')} in the model ${oneOf(all)}`);
}

function allGraphs(g: Graph, out: Graph[] = []): Graph[] {
  out.push(g);
  for (const n of g.nodes) for (const s of n.subgraphs()) allGraphs(s, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Element types

/**
 * The element type of every value, from the model's own types and `inferShapes`; the model's types and
 * value_info are restored afterwards, so the output only differs where this pass changes something.
 */
function collectTypes(model: Model, st: State): void {
  const graphs = allGraphs(model.graph);
  const saved = graphs.map((g) => ({ g, valueInfo: [...g.valueInfo], types: new Map([...g.values.values()].map((v) => [v, v.type] as const)) }));
  // inference, then the fallback rules, and again while the fallback finds something: a Loop body whose inputs the
  // model leaves untyped is only inferred once they have the Loop's input types
  for (let round = 0; round < 4; round++) {
    try {
      inferShapes(model);
    } catch (e) {
      if (round === 0) st.notes.push(`type inference stopped (${(e as Error).message}); using the types the model states`);
    }
    for (const g of graphs) for (const v of g.values.values()) st.dtype.set(v, v.elemType ?? v.initializer?.dtype);
    const found = fallbackTypes(model.graph, st);
    if (!found.length) break;
    for (const v of found) if (v.type === undefined || (v.type.kind === 'tensor' && v.type.elemType === undefined)) v.type = { kind: 'tensor', elemType: st.dtype.get(v)! };
  }
  for (const { g, valueInfo, types } of saved) {
    g.valueInfo.splice(0, g.valueInfo.length, ...valueInfo);
    for (const [v, t] of types) v.type = t;
  }
}

/** Element types that the inference table does not give: control flow and recurrent ops, whose rules are simple. */
function fallbackTypes(g: Graph, st: State, found: Value[] = []): Value[] {
  const dt = (v: Value | null | undefined) => (v ? st.dtype.get(v) : undefined);
  const setIfUnknown = (v: Value | null | undefined, t: DType | undefined) => {
    if (v && t && st.dtype.get(v) === undefined) {
      st.dtype.set(v, t);
      found.push(v);
    }
  };
  for (const node of g.nodes) {
    const body = node.getAttr('body');
    if (node.opType === 'Loop' && body?.type === 'graph') {
      body.value.inputs.forEach((v, i) => setIfUnknown(v, i === 0 ? 'int64' : i === 1 ? 'bool' : dt(node.inputs[i])));
    } else if (node.opType === 'Scan' && body?.type === 'graph') {
      body.value.inputs.forEach((v, i) => setIfUnknown(v, dt(node.inputs[i])));
    }
    for (const s of node.subgraphs()) fallbackTypes(s, st, found);
    if (!isOnnxDomain(node)) continue;
    node.outputs.forEach((out, i) => {
      if (!out || dt(out) !== undefined) return;
      if (node.opType === 'If') {
        const a = node.getAttr('then_branch');
        const b = node.getAttr('else_branch');
        setIfUnknown(out, (a?.type === 'graph' ? dt(a.value.outputs[i]) : undefined) ?? (b?.type === 'graph' ? dt(b.value.outputs[i]) : undefined));
      } else if (node.opType === 'Loop' && body?.type === 'graph') {
        setIfUnknown(out, dt(body.value.outputs[i + 1]) ?? dt(node.inputs[i + 2]));
      } else if (node.opType === 'Scan' && body?.type === 'graph') {
        setIfUnknown(out, dt(body.value.outputs[i]));
      } else if (node.opType === 'LSTM' || node.opType === 'GRU' || node.opType === 'RNN') {
        setIfUnknown(out, dt(node.inputs[0]));
      }
    });
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Which nodes convert

function isFloat32(v: Value | null | undefined, st: State): v is Value {
  return !!v && st.dtype.get(v) === 'float32';
}

function opsetOfNode(node: Node): number {
  return node.graph.root.model?.opset('') ?? 21;
}

/** A constant with at most SMALL_CONSTANT elements (an initializer or a Constant output). */
function isSmallConstant(v: Value): boolean {
  if (v.initializer) return v.initializer.size <= SMALL_CONSTANT;
  const p = v.producer;
  if (p?.opType === 'Constant' && isOnnxDomain(p)) {
    const t = constantNodeTensor(p);
    return !!t && t.size <= SMALL_CONSTANT;
  }
  return false;
}

/** Why a node stays float32 (rules 1 and 2), or undefined when it converts. */
function keepReason(node: Node, st: State, holderKept: boolean): string | undefined {
  if (holderKept) return 'inside a node kept in float32';
  if (!isOnnxDomain(node)) return `domain "${node.domain}" is not ONNX's`;
  if (st.opts.blockNodes.includes(node.name)) return 'listed in blockNodes';
  if (st.opts.blockOps.includes(node.opType)) return 'listed in blockOps';
  const builtIn = FLOAT32_OPS[node.opType];
  if (builtIn) return builtIn;
  if ((node.opType === 'ScatterND' || node.opType === 'ScatterElements') && node.getString('reduction', 'none') !== 'none') {
    return 'scatter reductions accumulate, and onnxruntime has no float16 kernel for them';
  }
  const subgraphIo = node.subgraphs().flatMap((s) => [...s.inputs, ...s.outputs]);
  for (const v of [...node.inputs, ...node.outputs, ...subgraphIo]) {
    if (!v) continue;
    if (v.type?.kind === 'other') return `"${v.name}" is a ${v.type.description}`;
    if (st.dtype.get(v) === undefined) return `the element type of "${v.name}" is unknown`;
  }
  // rule 2: integers in float
  if (node.opType === 'Cast') {
    const from = st.dtype.get(node.inputs[0]!);
    if (node.getInt('to', 0) === ONNX_FLOAT && from !== undefined && !DTYPES[from].float) return INT_CAST;
    return undefined;
  }
  const floats = node.inputs.filter((v): v is Value => isFloat32(v, st));
  if (floats.some((v) => st.intDerived.has(v)) && floats.every((v) => st.intDerived.has(v) || isSmallConstant(v))) {
    return INT_ARITHMETIC;
  }
  return undefined;
}

/** Decides every node of a graph (and its subgraphs), in order. */
function decide(g: Graph, st: State, holderKept: boolean): void {
  for (const node of g.nodes) {
    const why = keepReason(node, st, holderKept);
    if (why) {
      st.kept.set(node, why);
      if (why === INT_CAST || why === INT_ARITHMETIC) for (const o of node.outputs) if (isFloat32(o, st)) st.intDerived.add(o);
    } else {
      st.converted.add(node);
    }
    for (const s of node.subgraphs()) decide(s, st, !st.converted.has(node));
  }
}

/** What input `index` of `node` wants a float32 value to be. */
function inputWant(node: Node, index: number, st: State): Want {
  // kept or not, a Cast or Shape reads any type: a Cast in front of one would change nothing
  if (isOnnxDomain(node) && ANY_TYPE_INPUTS[node.opType]?.includes(index)) return 'any';
  if (!st.converted.has(node)) return 'float32';
  if (float32Inputs(node.opType, opsetOfNode(node)).includes(index)) return 'float32';
  return 'float16';
}

/** What output `index` of graph `g` wants a float32 value to be. */
function outputWant(g: Graph, st: State): Want {
  if (!g.parent) return st.opts.keepIoTypes ? 'float32' : 'float16';
  return st.converted.has(g.parent) ? 'float16' : 'float32';
}

/** Rule 3: a converted Cast to float32 whose output no reader wants in float16 stays float32. Readers come first. */
function reviewCasts(g: Graph, st: State): void {
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i]!;
    for (const s of node.subgraphs()) reviewCasts(s, st);
    if (node.opType !== 'Cast' || !st.converted.has(node) || node.getInt('to', 0) !== ONNX_FLOAT) continue;
    const out = node.outputs[0];
    if (!out) continue;
    const wantsHalf = out.uses.some((u) => inputWant(u.node, u.index, st) === 'float16') || (out.isGraphOutput && outputWant(out.graph, st) === 'float16');
    if (!wantsHalf) {
      st.converted.delete(node);
      st.kept.set(node, 'only float32 readers use its output');
    }
  }
}

/** The values that become float16 (rule 4's constants are decided in `convertConstants`). */
function markChanged(g: Graph, st: State): void {
  const main = !g.parent;
  for (const v of g.inputs) {
    if (!isFloat32(v, st) || v.initializer) continue;
    if (main ? !st.opts.keepIoTypes && !onlyFloat32Readers(v, st) : st.converted.has(g.parent!)) st.changed.add(v);
  }
  for (const node of g.nodes) {
    if (st.converted.has(node) && node.opType !== 'Constant') {
      const fixed = FLOAT32_OUTPUTS[node.opType] ?? [];
      node.outputs.forEach((o, i) => {
        if (isFloat32(o, st) && !fixed.includes(i)) st.changed.add(o);
      });
    }
    for (const s of node.subgraphs()) markChanged(s, st);
  }
}

/**
 * Whether float32 readers, and no float16 ones, read a value: a model input that only float32 code reads (Resize
 * scales given as an input, Range bounds) stays float32 even without keepIoTypes, as rounding it would gain nothing.
 */
function onlyFloat32Readers(v: Value, st: State): boolean {
  if (v.isGraphOutput) return false;
  const wants = v.uses.map((u) => inputWant(u.node, u.index, st));
  return wants.includes('float32') && !wants.includes('float16');
}

// ---------------------------------------------------------------------------------------------------------------
// Constants

/** What a reader wants a float32 constant to be (`any` readers leave the choice to the others). */
function constantWant(node: Node, index: number, st: State): Want {
  if (!st.converted.has(node)) return 'float32';
  const w = inputWant(node, index, st);
  if (w !== 'any') return w;
  // a converted Cast to float gives float16 anyway; a Cast to an integer type reads the exact float32
  if (node.opType === 'Cast') return FLOAT_CODES.has(node.getInt('to', 0)) ? 'float16' : 'float32';
  return 'any';
}

/** Rule 4: initializers and Constant values. */
function convertConstants(model: Model, st: State): void {
  for (const g of allGraphs(model.graph)) {
    for (const v of [...g.initializers.values()]) {
      if (v.initializer?.dtype !== 'float32' || !isFloat32(v, st)) continue;
      // an overridable initializer is part of the model's interface; one that is a graph output keeps its name and type
      if (!isConstantInitializer(v) && st.opts.keepIoTypes) continue;
      if (v.isGraphOutput) continue;
      convertSource(v, st, (t) => {
        v.initializer = t;
        v.type = { kind: 'tensor', elemType: 'float16', shape: [...t.dims] };
      }, (t) => addConstant(g, `${v.name}_fp16`, t));
    }
    for (const node of [...g.nodes]) {
      if (node.opType !== 'Constant' || !st.converted.has(node)) continue;
      const out = node.outputs[0];
      const t = out && constantNodeTensor(node);
      if (!out || !t || t.dtype !== 'float32' || out.isGraphOutput) continue;
      convertSource(out, st, (h) => {
        for (const k of ['value', 'value_float', 'value_floats']) node.attributes.delete(k);
        node.setAttr('value', attr.tensor(h));
        if (out.type?.kind === 'tensor') out.type = { ...out.type, elemType: 'float16' };
      }, (h) => {
        const copy = g.addNode({ opType: 'Constant', name: g.uniqueNodeName(`${node.name || 'Constant'}_fp16`), outputs: [`${out.name}_fp16`], attributes: { value: attr.tensor(h) }, after: node });
        return copy.output();
      });
    }
  }
}

/**
 * Converts one constant by what its readers want: all float16 (or none) → in place; all float32 → left; both →
 * a float16 copy for the float16 readers.
 */
function convertSource(v: Value, st: State, inPlace: (t: Tensor) => void, copy: (t: Tensor) => Value): void {
  const half: { node: Node; index: number }[] = [];
  let full = 0;
  for (const u of v.uses) {
    const w = constantWant(u.node, u.index, st);
    if (w === 'float16') half.push(u);
    else if (w === 'float32') full++;
  }
  if (full > 0 && half.length === 0) return;
  const t = v.initializer ?? constantNodeTensor(v.producer!)!;
  const h = toHalfTensor(t, v.name, st);
  st.edits++;
  if (full === 0) {
    inPlace(h);
    st.changed.add(v);
    return;
  }
  const c = copy(h);
  c.type = { kind: 'tensor', elemType: 'float16', shape: [...h.dims] };
  for (const u of half) u.node.setInput(u.index, c);
}

/** float32 → float16 data, clamping to ±65504 (rule 4) and counting what overflows or underflows. */
function toHalfTensor(t: Tensor, name: string, st: State): Tensor {
  const x = t.data<Float32Array>();
  let over = 0;
  let maxAbs = 0;
  let under = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    if (a > FP16_MAX && a !== Infinity) {
      over++;
      if (a > maxAbs) maxAbs = a;
    } else if (a !== 0 && a <= 2 ** -25) {
      under++; // at most half the smallest subnormal: rounds to ±0
    }
  }
  let src = x;
  if (over) {
    if (st.opts.clamp) {
      src = Float32Array.from(x, (y) => (y > FP16_MAX && y !== Infinity ? FP16_MAX : y < -FP16_MAX && y !== -Infinity ? -FP16_MAX : y));
      st.clamped.push({ name, count: over, maxAbs });
      st.notes.push(`warning: clamped ${over} value(s) of "${name}" to ±65504, the float16 range (largest |x| was ${maxAbs})`);
    } else {
      st.notes.push(`warning: ${over} value(s) of "${name}" are beyond ±65504 and became ±inf (clamp is off; largest |x| was ${maxAbs})`);
    }
  }
  st.halved.tensors++;
  st.halved.bytes += x.length * 4;
  if (under) {
    st.underflow.values += under;
    st.underflow.tensors++;
  }
  return Tensor.from('float16', t.dims, float32ToFloat16(src));
}

// ---------------------------------------------------------------------------------------------------------------
// Rewriting

function rewrite(model: Model, st: State): void {
  for (const g of allGraphs(model.graph)) {
    // types of the values that became float16 (initializers already have theirs)
    for (const v of g.values.values()) {
      if (st.changed.has(v) && v.type?.kind === 'tensor' && v.type.elemType === 'float32') {
        v.type = { ...v.type, elemType: 'float16' };
        if (!v.initializer) st.edits++;
      }
    }
    for (const node of [...g.nodes]) {
      if (st.converted.has(node)) retypeAttributes(node, st);
      node.inputs.forEach((v, i) => {
        if (!isFloat32(v, st)) return;
        const want = inputWant(node, i, st);
        const have: Want = st.changed.has(v) ? 'float16' : 'float32';
        if (want !== 'any' && want !== have) node.setInput(i, castOf(v, want, g, node, st));
      });
    }
    fixOutputs(g, st);
  }
}

/** Rule 3's attribute side: Cast's `to`, EyeLike's `dtype`, ConstantOfShape's `value`. */
function retypeAttributes(node: Node, st: State): void {
  const out = node.outputs[0];
  if (!out || !st.changed.has(out)) return;
  if (node.opType === 'Cast' && node.getInt('to', 0) === ONNX_FLOAT) {
    node.setAttr('to', attr.int(ONNX_FLOAT16));
    st.edits++;
  } else if (node.opType === 'EyeLike' && node.getInt('dtype', 0) === ONNX_FLOAT) {
    node.setAttr('dtype', attr.int(ONNX_FLOAT16));
    st.edits++;
  } else if (node.opType === 'ConstantOfShape') {
    const v = node.getTensor('value');
    if (!v) node.setAttr('value', attr.tensor(Tensor.from('float16', [1], new Uint16Array(1)))); // the default is float32 0
    else if (v.dtype === 'float32') node.setAttr('value', attr.tensor(toHalfTensor(v, `${node.name}.value`, st)));
    st.edits++;
  }
}

/** The value `v` cast to `to`, made once per graph before its first reader there. */
function castOf(v: Value, to: Want, g: Graph, before: Node | undefined, st: State): Value {
  let byValue = st.casts.get(g);
  if (!byValue) st.casts.set(g, (byValue = new Map()));
  let byType = byValue.get(v);
  if (!byType) byValue.set(v, (byType = new Map()));
  const known = byType.get(to);
  if (known) return known;
  const suffix = to === 'float16' ? 'fp16' : 'fp32';
  const node = g.addNode({
    opType: 'Cast',
    name: g.uniqueNodeName(`${v.name}_to_${suffix}`),
    inputs: [v],
    outputs: [`${v.name}_${suffix}`],
    attributes: { to: attr.int(to === 'float16' ? ONNX_FLOAT16 : ONNX_FLOAT) },
    ...(before ? { before } : {}),
  });
  const out = node.output();
  out.type = tensorType(v.type, to === 'float16' ? 'float16' : 'float32');
  byType.set(to, out);
  st.edits++;
  return out;
}

function tensorType(t: ValueType | undefined, elemType: DType): ValueType {
  return { kind: 'tensor', elemType, ...(t?.kind === 'tensor' && t.shape ? { shape: [...t.shape] } : {}) };
}

/** Rule 6: graph outputs get the type their graph's interface wants. */
function fixOutputs(g: Graph, st: State): void {
  const want = outputWant(g, st);
  for (let i = 0; i < g.outputs.length; i++) {
    const v = g.outputs[i]!;
    if (!isFloat32(v, st)) continue;
    const have: Want = st.changed.has(v) ? 'float16' : 'float32';
    if (have === want) continue;
    if (g.parent) {
      // subgraph outputs are matched by position: a Cast at the end will do
      g.outputs[i] = castOf(v, want, g, undefined, st);
      continue;
    }
    if (v.isGraphInput) continue; // an input passed through keeps the input's type (they agree by rule 6)
    // the main graph's output names are the model's interface: the Cast takes the name, the value gets a new one
    const name = v.name;
    v.name = g.uniqueName(`${name}_${have === 'float16' ? 'fp16' : 'fp32'}`);
    const cast = g.addNode({ opType: 'Cast', name: g.uniqueNodeName(`${name}_to_${want === 'float16' ? 'fp16' : 'fp32'}`), inputs: [v], outputs: [name], attributes: { to: attr.int(want === 'float16' ? ONNX_FLOAT16 : ONNX_FLOAT) } });
    const out = cast.output();
    out.type = tensorType(v.type, want === 'float16' ? 'float16' : 'float32');
    out.docString = v.docString;
    v.docString = '';
    for (let k = 0; k < g.outputs.length; k++) if (g.outputs[k] === v) g.outputs[k] = out;
    if (v.type?.kind === 'tensor') v.type = { ...v.type, elemType: have === 'float16' ? 'float16' : 'float32' };
    st.edits++;
  }
}

function summarize(st: State): void {
  const { tensors, bytes } = st.halved;
  if (tensors) st.notes.unshift(`converted ${tensors} float32 tensor(s) to float16 (${bytes} → ${bytes / 2} bytes)`);
  const byReason = new Map<string, Node[]>();
  for (const [node, why] of st.kept) {
    // nodes with no float32 in them are not worth a note
    if (![...node.inputs, ...node.outputs].some((v) => isFloat32(v, st))) continue;
    if (!byReason.has(why)) byReason.set(why, []);
    byReason.get(why)!.push(node);
  }
  for (const [why, nodes] of byReason) {
    const shown = nodes.slice(0, 5).map(String).join(', ');
    st.notes.push(`kept ${nodes.length} node(s) in float32 (${why}): ${shown}${nodes.length > 5 ? `, … ${nodes.length - 5} more` : ''}`);
  }
  if (st.underflow.values) {
    st.notes.push(`${st.underflow.values} nonzero weight(s) in ${st.underflow.tensors} tensor(s) are below half of float16's smallest subnormal (2^-24) and became 0`);
  }
}
