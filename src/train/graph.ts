/**
 * The training engine: a training-step graph built from a student model, using only standard ONNX ops, for
 * onnxruntime to run. One run of the step graph is a forward pass, the loss (`loss.ts`) and the backward pass; the
 * caller feeds the parameters and the batch and reads back the loss, the logits, one gradient per parameter and
 * the updated BatchNormalization running statistics. The optimizer lives outside (it is cheap in TypeScript).
 *
 * How the step graph is made (`buildTrainingGraph`):
 * 1. A copy of the student, its default-domain opset raised to at least 17 (needed for ScatterElements with
 *    `reduction="add"`; the op changes between 13 and 17 only add types and defaulted attributes), shapes inferred.
 *    Students below opset 13 are refused (Softmax and the Reduce/Split/Squeeze forms changed at 13).
 * 2. Nodes that do not lead to the logits are removed; the other graph outputs go.
 * 3. Analysis: a value *requires a gradient* when it depends on a trainable parameter through differentiable
 *    inputs (each rule says which of its inputs are); it *reaches the loss* when the logits depend on it. Every node
 *    with an output that does both needs a gradient rule (`grad/table.ts`): all nodes without one, and all whose
 *    configuration their rule does not handle, are named in one GraphError.
 * 4. Forward hooks: BatchNormalization in training mode gets batch statistics and running-statistics updates;
 *    MaxPool with overlapping windows gets its Indices output.
 * 5. The loss subgraph gives d(loss)/d(logits); rules run in reverse node order, gradients that meet at a value are
 *    summed.
 * 6. Trainable initializers and running statistics become graph inputs of the same name; outputs are `loss`,
 *    `logits`, the gradients, and the running-statistics updates.
 *
 * Hints (`options.hints`, or the model's `onnxpress.train.hints` metadata): extra loss terms `weight·MSE(student,
 * target)` between two values of the model. Their gradient enters the backward pass at the student value; the
 * target's producers (for distillation, a frozen copy of the teacher's layers) stay out of the analysis (no
 * parameters, no rules needed, BatchNormalization left in inference mode). Each term's unweighted MSE is an extra
 * output (`hintOutputs`).
 *
 * Parameters by default: every float32 initializer that gets a gradient and either has more than one element or
 * feeds a Conv, ConvTranspose, Gemm, MatMul or BatchNormalization (so scalar constants such as HardSwish's 3 and 6
 * in an exported decomposition stay constants). `options.trainable` replaces that test; it is asked only about
 * initializers that get a gradient.
 */
import { GraphError, OptionsError, expected, oneOf } from '../errors.js';
import { dtypeCode, type DType } from '../onnx/dtype.js';
import { inferShapes } from '../onnx/infer/index.js';
import { attr, Model, type Attr, type Dim, type Graph, type Node, type Value } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';
import { GRAD_RULES, gradRuleFor } from './grad/table.js';
import { buildHintLoss, buildLoss, resolveLossSpec, type HintLoss, type LossSpec } from './loss.js';

export type { HintLoss, LossSpec } from './loss.js';

/**
 * The metadata key under which a model may carry its own hint terms (JSON, an array of `HintLoss`), used when
 * `TrainingGraphOptions.hints` is not given: `attachHints` (distill) writes it, so that `train` needs no option of
 * its own for hints.
 */
export const HINTS_METADATA_KEY = 'onnxpress.train.hints';

/** A parameter the step graph takes as an input and returns a gradient for. */
export interface TrainableParam {
  /** Initializer name in the student, and the step graph's input name. */
  name: string;
  /** The step graph's output holding d(loss)/d(param). */
  gradOutput: string;
  /** The student's value. */
  init: Tensor;
}

/** A step graph and how to feed and read it. */
export interface TrainingGraph {
  /**
   * The step graph. Inputs: every parameter (by its own name), every buffer, the data input(s), `labels` (one-hot
   * float32 [B,C]) with `useLabels`, `teacher_logits` (float32 [B,C]) with `useTeacher`. Outputs: `loss` (float32,
   * shape []), `logits`, one gradient per parameter, one update per buffer. Any batch size B runs.
   */
  model: Model;
  params: TrainableParam[];
  /** BatchNormalization running mean and variance (training mode only): feed `name`, read its new value from `updateOutput`. */
  buffers: { name: string; init: Tensor; updateOutput: string }[];
  dataInputs: string[];
  labelsInput?: string;
  teacherInput?: string;
  lossOutput: 'loss';
  logitsOutput: 'logits';
  /** One output per hint, in order: its unweighted mean squared error (a scalar; `loss` includes the weighted sum). */
  hintOutputs: string[];
}

/** Options of `buildTrainingGraph`. */
export interface TrainingGraphOptions {
  loss: LossSpec;
  /** Which initializers are trained (asked only about float32 initializers that get a gradient); see the module doc for the default. */
  trainable?: (initializerName: string) => boolean;
  /**
   * `train` (default): batch statistics in the forward, running statistics updated with the node's momentum
   * (new = momentum·old + (1−momentum)·batch, the variance unbiased as in PyTorch). `frozen`: running statistics
   * used and left alone (scale and bias still train).
   */
  batchNorm?: 'train' | 'frozen';
  /** The student output that holds the logits (default: its only output). Must be [B, C]. */
  logitsOutput?: string;
  /**
   * Hint terms added to the loss (default: the model's `onnxpress.train.hints` metadata, else none). Nodes that
   * lead only to hint targets are run as they are (no gradient, BatchNormalization left in inference mode).
   */
  hints?: readonly HintLoss[];
}

/** Ops whose small initializers are still weights by default. */
const PARAMETRIC = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization']);
const FLOATS = new Set<DType>(['float32', 'float64', 'float16', 'bfloat16']);
/** The lowest opset the step graph is written in: ScatterElements `reduction` needs 16; 17 is what the probe used. */
const STEP_OPSET = 17;

// ---------------------------------------------------------------------------------------------------------------
// Emitter: what rules and the loss use to add nodes

/**
 * Adds nodes and constants to the step graph for the gradient rules and the loss, and answers shape questions about
 * forward values (from shape inference on the student). Errors name the forward node being worked on.
 *
 * @example
 * ```ts
 * const dx = em.op('Where', [em.op('Greater', [y, em.f32(0)]), dy, em.f32(0)]);
 * ```
 */
export class Emitter {
  /** The forward node whose gradient (or training rewrite) is being built: names the new nodes and errors. */
  at?: Node;
  /** Prefix of new node names: `train/grad/<node>/<Op>`. */
  prefix = 'train';
  readonly #consts = new Map<string, Value>();
  readonly #shapes = new Map<Value, Value>();

  constructor(
    readonly graph: Graph,
    /** The step graph's default-domain opset. */
    readonly opset: number,
  ) {}

  /** Adds a node reading `inputs` (null: omitted); returns it. */
  node(opType: string, inputs: readonly (Value | null)[], attributes: Record<string, Attr> = {}, outputs = 1): Node {
    const name = this.graph.uniqueNodeName(this.at ? `${this.prefix}/${this.at.name || this.at.opType}/${opType}` : `${this.prefix}/${opType}`);
    return this.graph.addNode({ opType, name, inputs, attributes, outputs });
  }

  /** Adds a one-output node; returns its output. */
  op(opType: string, inputs: readonly (Value | null)[], attributes: Record<string, Attr> = {}): Value {
    return this.node(opType, inputs, attributes).output(0);
  }

  add(a: Value, b: Value): Value {
    return this.op('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op('Div', [a, b]);
  }
  /** `x·c` for a float constant, or x itself when c is 1. */
  scale(x: Value, c: number): Value {
    return c === 1 ? x : this.mul(x, this.f32(c));
  }

  reshape(x: Value, shape: Value | readonly number[]): Value {
    return this.op('Reshape', [x, Array.isArray(shape) ? this.i64(shape) : (shape as Value)]);
  }

  transpose(x: Value, perm: readonly number[]): Value {
    return perm.every((p, i) => p === i) ? x : this.op('Transpose', [x], { perm: attr.ints([...perm]) });
  }

  cast(x: Value, to: DType): Value {
    return this.op('Cast', [x], { to: attr.int(dtypeCode(to)) });
  }

  /** ReduceSum over `axes` (axes as an input, opset ≥ 13). */
  reduceSum(x: Value, axes: readonly number[], keepdims: boolean): Value {
    return this.op('ReduceSum', [x, this.i64(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
  }

  /** ReduceMean, ReduceSumSquare, …: axes as an attribute below opset 18, as an input from 18. */
  reduce(op: string, x: Value, axes: readonly number[], keepdims: boolean): Value {
    const keep = { keepdims: attr.int(keepdims ? 1 : 0) };
    return this.opset >= 18 ? this.op(op, [x, this.i64(axes)], keep) : this.op(op, [x], { ...keep, axes: attr.ints([...axes]) });
  }

  /** A float32 constant (a scalar for a number), shared by every reader. */
  f32(values: number | readonly number[], dims?: readonly number[]): Value {
    const data = typeof values === 'number' ? [values] : values;
    return this.constant(Tensor.from('float32', dims ?? (typeof values === 'number' ? [] : [data.length]), new Float32Array(data)));
  }

  /** An int64 constant (1-D by default), shared by every reader. */
  i64(values: readonly number[], dims?: readonly number[]): Value {
    return this.constant(Tensor.from('int64', dims ?? [values.length], values.map((v) => BigInt(v))));
  }

  /** An initializer holding `t` (small ones are shared by value). */
  constant(t: Tensor, name = `train/const_${t.dtype}`): Value {
    const key = t.size <= 64 ? `${t.dtype}[${t.dims}]${t.toNumbers().join()}` : undefined;
    const known = key && this.#consts.get(key);
    if (known) return known;
    const v = this.graph.addInitializer(name, t);
    if (key) this.#consts.set(key, v);
    return v;
  }

  /** The elements of a value that is an initializer or a Constant node's output, or undefined. */
  constantOf(v: Value | null | undefined): number[] | undefined {
    if (!v) return undefined;
    if (v.initializer) return v.initializer.toNumbers();
    const p = v.producer;
    const t = p?.opType === 'Constant' ? p.getTensor('value') : undefined;
    return t?.toNumbers();
  }

  /** The inferred shape of a forward value; a GraphError naming the node when its rank is unknown. */
  shape(v: Value): readonly Dim[] {
    const s = v.shape ?? v.initializer?.dims;
    if (!s) this.fail(`the shape of "${v.name}" is unknown (shape inference could not find it)`);
    return s;
  }

  rank(v: Value): number {
    return this.shape(v).length;
  }

  /** The dims of a value whose shape is fully known; a GraphError naming `what` otherwise. */
  staticDims(v: Value, what = `"${v.name}"`): number[] {
    const s = this.shape(v);
    if (!s.every((d): d is number => typeof d === 'number')) this.fail(expected(`a fixed shape`, what, formatDims(s)));
    return [...s] as number[];
  }

  /** The shape of `v` as an int64 tensor: a constant when fully known, else a (shared) Shape node. */
  shapeOf(v: Value, dims: readonly Dim[] = this.shape(v)): Value {
    if (dims.every((d): d is number => typeof d === 'number')) return this.i64(dims as number[]);
    let s = this.#shapes.get(v);
    if (!s) {
      s = this.op('Shape', [v]);
      this.#shapes.set(v, s);
    }
    return s;
  }

  /**
   * Sums a gradient of a broadcast result (shape `gShape`) back to the shape of `target`: ReduceSum over the leading
   * dims and the dims where the target is 1, then Reshape. Dims with different symbols are taken to be equal
   * (broadcasting only stretches dims of size 1).
   */
  reduceTo(g: Value, gShape: readonly Dim[], target: Value, tShape: readonly Dim[] = this.shape(target)): Value {
    const lead = gShape.length - tShape.length;
    if (lead < 0) this.fail(`cannot sum a gradient of shape ${formatDims(gShape)} to the larger shape ${formatDims(tShape)} of "${target.name}"`);
    const axes: number[] = [];
    for (let i = 0; i < lead; i++) axes.push(i);
    tShape.forEach((t, i) => {
      const d = gShape[i + lead];
      if (t === d) return;
      if (t === 1) axes.push(i + lead);
      else if (typeof t === 'number' && typeof d === 'number') this.fail(`"${target.name}" ${formatDims(tShape)} does not broadcast to ${formatDims(gShape)}`);
    });
    if (!axes.length) return g;
    const r = this.reduceSum(g, axes, true);
    return lead === 0 ? r : this.reshape(r, this.shapeOf(target, tShape));
  }

  /** Float zeros shaped like `v`. */
  zerosLike(v: Value): Value {
    return this.op('ConstantOfShape', [this.shapeOf(v)], { value: attr.tensor(Tensor.from('float32', [1], [0])) });
  }

  /** The sum of gradients that meet at one value. */
  sum(values: readonly Value[]): Value {
    if (values.length === 1) return values[0]!;
    return values.length === 2 ? this.add(values[0]!, values[1]!) : this.op('Sum', values);
  }

  /** Throws a GraphError naming the node being worked on. */
  fail(message: string): never {
    throw new GraphError(this.at ? `${this.at}: ${message}` : message);
  }
}

function formatDims(s: readonly Dim[]): string {
  return `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------------------------
// buildTrainingGraph

/**
 * Builds the training-step graph of a student model. See the module doc for what it contains.
 *
 * @example
 * ```ts
 * const student = await loadModel('fixtures/fmnist-cnn.onnx');
 * const tg = buildTrainingGraph(student, { loss: { useLabels: true, useTeacher: true, temperature: 4, alpha: 0.5 } });
 * const runner = await Runner.create(tg.model, { graphOptimizationLevel: 'extended' });
 * const feeds = { input: batch, labels: oneHot, teacher_logits: teacher };
 * for (const p of tg.params) feeds[p.name] = weights.get(p.name);
 * for (const b of tg.buffers) feeds[b.name] = stats.get(b.name);
 * const out = await runner.run(feeds); // out.loss, out.logits, out[p.gradOutput], out[b.updateOutput]
 * ```
 */
export function buildTrainingGraph(student: Model, options: TrainingGraphOptions): TrainingGraph {
  const loss = resolveLossSpec(options.loss);
  const batchNorm = options.batchNorm ?? 'train';
  if (batchNorm !== 'train' && batchNorm !== 'frozen') throw new OptionsError(expected('"train" or "frozen"', 'batchNorm', batchNorm));
  const studentOpset = student.opset() ?? 0;
  if (studentOpset < 13) {
    throw new GraphError(`Cannot build a training graph for a model of opset ${studentOpset}: gradient rules need opset 13 or later (Softmax, ReduceSum, Split and Squeeze changed at 13); convert the model first`);
  }

  const model = copyModel(student);
  const g = model.graph;
  g.name = `${student.graph.name || 'student'}_training_step`;
  const opset = Math.max(studentOpset, STEP_OPSET);
  model.opsetImports.set(model.opsetImports.has('') || !model.opsetImports.has('ai.onnx') ? '' : 'ai.onnx', opset);
  model.irVersion = Math.max(model.irVersion, 8);
  g.sort();

  // 1. the logits, and only what leads to them
  const outputNames = g.outputs.map((o) => o.name);
  const logitsName = options.logitsOutput ?? (outputNames.length === 1 ? outputNames[0]! : undefined);
  if (logitsName === undefined) throw new GraphError(`The student has ${outputNames.length} outputs: say which holds the logits with logitsOutput ${oneOf(outputNames)}`);
  const logits = g.outputs.find((o) => o.name === logitsName);
  if (!logits) throw new GraphError(`No student output named "${logitsName}" for logitsOutput ${oneOf(outputNames)}`);
  const hintSpecs = options.hints ?? hintsFromMetadata(student);
  const hintValues = hintSpecs.map((h, i) => {
    const find = (name: unknown, field: 'student' | 'target'): Value => {
      const v = typeof name === 'string' ? g.lookup(name) : undefined;
      if (!v) throw new OptionsError(`${expected(`the name of a value in graph "${student.graph.name}"`, `hints[${i}].${field}`, name)}`);
      return v;
    };
    return { student: find(h.student, 'student'), target: find(h.target, 'target'), weight: h.weight ?? 1 };
  });
  g.outputs.length = 0;
  removeDeadNodes(g, [logits, ...hintValues.flatMap((h) => [h.student, h.target])]);
  const dataInputs = g.inputs.filter((v) => !v.initializer);
  // inputs that are also initializers are overridable constants: the step graph keeps them as constants
  for (const v of g.inputs.filter((x) => x.initializer)) g.inputs.splice(g.inputs.indexOf(v), 1);
  // any batch size: a fixed leading dim of a data input becomes symbolic
  let changed = false;
  for (const v of dataInputs) {
    const s = v.shape;
    if (s && s.length && typeof s[0] === 'number' && v.type?.kind === 'tensor') {
      v.type = { ...v.type, shape: ['batch', ...s.slice(1)] };
      changed = true;
    }
  }
  inferShapes(model, { overwrite: changed });
  const logitsShape = logits.shape;
  if (!logitsShape || logitsShape.length !== 2) throw new GraphError(expected('logits of shape [batch, classes]', `student output "${logits.name}"`, logitsShape ? formatDims(logitsShape) : 'an unknown shape'));

  // 2. analysis: which values require a gradient and which reach the logits
  const em = new Emitter(g, opset);
  const isFloat = (v: Value): boolean => {
    const t = v.elemType ?? v.initializer?.dtype;
    return t === undefined || FLOATS.has(t);
  };
  const differentiable = (n: Node): readonly number[] => {
    const rule = gradRuleFor(n.opType, n.domain);
    return rule ? rule.differentiable(n) : n.inputs.flatMap((v, i) => (v && isFloat(v) ? [i] : []));
  };
  const candidates = new Set<Value>();
  for (const v of g.initializers.values()) if (v.initializer!.dtype === 'float32') candidates.add(v);
  // hint students reach the loss; hint targets do not (no gradient flows into them)
  const reaches = new Set<Value>([logits, ...hintValues.map((h) => h.student)]);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => o && reaches.has(o))) continue;
    for (const k of differentiable(n)) {
      const v = n.inputs[k];
      if (v && isFloat(v)) reaches.add(v);
    }
  }
  const trainable = options.trainable ?? ((name: string) => defaultTrainable(g.initializers.get(name)!));
  const params = [...candidates].filter((v) => reaches.has(v) && trainable(v.name));
  const requires = new Set<Value>(params);
  for (const n of g.nodes) {
    if (differentiable(n).some((k) => n.inputs[k] && requires.has(n.inputs[k]!))) for (const o of n.outputs) if (o && isFloat(o)) requires.add(o);
  }
  const needsGrad = (v: Value | null | undefined): v is Value => !!v && requires.has(v) && reaches.has(v);
  const backwardNodes = g.nodes.filter((n) => n.outputs.some(needsGrad) && differentiable(n).some((k) => needsGrad(n.inputs[k])));
  if (!params.length) throw new GraphError(`Nothing to train in graph "${student.graph.name}": no float32 initializer that the logits depend on is trainable`);

  // 3. every node on the way needs a rule that handles it: one error names them all
  const missing: Node[] = [];
  const unsupported: string[] = [];
  for (const n of backwardNodes) {
    const rule = gradRuleFor(n.opType, n.domain);
    if (!rule) missing.push(n);
    else if (rule.check) {
      em.at = n;
      let reason: string | undefined;
      try {
        reason = rule.check(n, em);
      } catch (e) {
        if (!(e instanceof GraphError)) throw e;
        reason = e.message.startsWith(`${n}: `) ? e.message.slice(`${n}: `.length) : e.message;
      }
      if (reason) unsupported.push(`${n}: ${reason}`);
    }
  }
  em.at = undefined;
  if (missing.length || unsupported.length) {
    const parts: string[] = [];
    if (missing.length) {
      parts.push(`no gradient rule for ${missing.length} node${missing.length > 1 ? 's' : ''}: ${missing.map(String).join(', ')} (gradient rules exist for ${Object.keys(GRAD_RULES).join(', ')})`);
    }
    if (unsupported.length) parts.push(`gradient rules do not handle ${unsupported.join('; ')}`);
    throw new GraphError(`Cannot build a training graph for graph "${student.graph.name}": ${parts.join('; ')}`);
  }

  // 4. forward hooks: on every node that has one (BatchNormalization trains on batch statistics even where nothing
  //    behind it is trained, as in PyTorch's train mode); MaxPool's only matters on the backward path
  //    Nodes that only lead to hint targets (a frozen teacher's layers) get none: they run as they are.
  const trainSide = ancestorNodes(g, [logits, ...hintValues.map((h) => h.student)]);
  const saved = new Map<Node, Record<string, Value>>();
  const bufferUpdates: { init: Value; update: Value }[] = [];
  const inBackward = new Set(backwardNodes);
  em.prefix = 'train/fwd';
  for (const n of [...g.nodes]) {
    const rule = gradRuleFor(n.opType, n.domain);
    if (!rule?.forward || !trainSide.has(n)) continue;
    em.at = n;
    const r = rule.forward({ node: n, em, batchNorm, needsBackward: inBackward.has(n), buffer: (init, update) => bufferUpdates.push({ init, update }) });
    const now = r?.node ?? n;
    if (now !== n) {
      now.outputs.forEach((o, i) => {
        const old = n.outputs[i];
        if (o && old && requires.has(old)) requires.add(o);
        if (o && old && reaches.has(old)) reaches.add(o);
      });
      const k = backwardNodes.indexOf(n);
      if (k >= 0) backwardNodes[k] = now;
    }
    if (r?.saved) saved.set(now, r.saved);
  }

  // 5. loss and backward
  freeName(g, 'logits', logits);
  if (logits.name !== 'logits') {
    if (logits.producer && !logits.isGraphInput) logits.name = 'logits';
    else throw new GraphError(`The logits "${logits.name}" are a graph input: nothing to train`);
  }
  const logitsType = { kind: 'tensor' as const, elemType: 'float32' as const, shape: [...logitsShape] };
  for (const name of ['labels', 'teacher_logits', 'loss']) freeName(g, name);
  const labels = loss.useLabels ? g.createValue('labels', logitsType) : undefined;
  const teacher = loss.useTeacher ? g.createValue('teacher_logits', logitsType) : undefined;
  em.prefix = 'train/loss';
  em.at = undefined;
  const lossValues = buildLoss(em, logits, labels, teacher, loss);
  const grads = new Map<Value, Value[]>([[logits, [lossValues.dlogits]]]);
  const hintMse: Value[] = [];
  if (hintValues.length) {
    em.prefix = 'train/hint';
    const terms = [lossValues.loss];
    for (const h of hintValues) {
      const s = em.shape(h.student);
      const t = em.shape(h.target);
      // the batch dim may be symbolic on one side only; every other dim must be known and equal
      const same = s.length === t.length && s.every((d, k) => (k === 0 ? true : typeof d === 'number' && d === t[k]));
      if (!same) throw new GraphError(`Hint "${h.student.name}" ${formatDims(s)} and its target "${h.target.name}" ${formatDims(t)} must have the same shape`);
      const r = buildHintLoss(em, h.student, h.target, h.weight);
      hintMse.push(r.mse);
      terms.push(r.term);
      if (!grads.has(h.student)) grads.set(h.student, []);
      grads.get(h.student)!.push(r.ds);
    }
    lossValues.loss = em.sum(terms);
  }

  em.prefix = 'train/grad';
  const total = new Map<Value, Value>();
  const gradOf = (v: Value): Value | null => {
    if (total.has(v)) return total.get(v)!;
    const parts = grads.get(v);
    if (!parts?.length) return null;
    const s = em.sum(parts);
    total.set(v, s);
    return s;
  };
  for (let i = backwardNodes.length - 1; i >= 0; i--) {
    const n = backwardNodes[i]!;
    em.at = n;
    const dys = n.outputs.map((o) => (o && needsGrad(o) ? gradOf(o) : null));
    if (dys.every((d) => d === null)) continue;
    const diff = new Set(differentiable(n));
    const rule = gradRuleFor(n.opType, n.domain)!;
    const out = rule.backward({
      node: n,
      em,
      saved: saved.get(n) ?? {},
      dy: (k = 0) => dys[k] ?? null,
      needs: (k) => diff.has(k) && needsGrad(n.inputs[k]),
    });
    n.inputs.forEach((v, k) => {
      const d = out[k];
      if (!v || !d || !diff.has(k) || !needsGrad(v)) return;
      if (!grads.has(v)) grads.set(v, []);
      grads.get(v)!.push(d);
    });
  }
  em.at = undefined;

  // 6. inputs and outputs
  const lossOut = lossValues.loss;
  lossOut.name = 'loss';
  lossOut.type = { kind: 'tensor', elemType: 'float32', shape: [] };
  logits.type = logitsType;
  g.outputs.push(lossOut, logits);
  const hintOutputs = hintMse.map((m, i) => nameOutput(em, m, `hint${i}_mse`, { kind: 'tensor', elemType: 'float32', shape: [] }).name);
  const trained: TrainableParam[] = [];
  const gradValues: [Value, Value][] = [];
  for (const p of params) {
    const d = gradOf(p);
    if (d) gradValues.push([p, d]);
  }
  for (const [p, d] of gradValues) {
    const out = nameOutput(em, d, `${p.name}_grad`, { kind: 'tensor', elemType: 'float32', shape: [...p.initializer!.dims] });
    trained.push({ name: p.name, gradOutput: out.name, init: p.initializer! });
  }
  const buffers: TrainingGraph['buffers'] = [];
  for (const b of bufferUpdates) {
    const out = nameOutput(em, b.update, `${b.init.name}_updated`, { kind: 'tensor', elemType: 'float32', shape: [...b.init.initializer!.dims] });
    buffers.push({ name: b.init.name, init: b.init.initializer!, updateOutput: out.name });
  }
  if (labels) g.inputs.push(labels);
  if (teacher) g.inputs.push(teacher);
  for (const v of [...gradValues.map(([p]) => p), ...bufferUpdates.map((b) => b.init)]) toInput(g, v);
  g.sort();
  const problems = g.problems();
  if (problems.length) throw new GraphError(`Internal error: the training graph is invalid: ${problems.slice(0, 5).join('; ')}`);
  return {
    model,
    params: trained,
    buffers,
    dataInputs: dataInputs.map((v) => v.name),
    labelsInput: labels?.name,
    teacherInput: teacher?.name,
    lossOutput: 'loss',
    logitsOutput: 'logits',
    hintOutputs,
  };
}

/** The hint terms a model carries in its metadata (`HINTS_METADATA_KEY`), or none. */
function hintsFromMetadata(model: Model): HintLoss[] {
  const raw = model.metadata.get(HINTS_METADATA_KEY);
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new GraphError(expected('a JSON array of {student, target, weight}', `metadata "${HINTS_METADATA_KEY}"`, raw));
  return parsed as HintLoss[];
}

/** The nodes that the given values depend on (in this graph). */
function ancestorNodes(g: Graph, roots: readonly Value[]): Set<Node> {
  const live = new Set<Node>();
  const stack = [...roots];
  const seen = new Set<Value>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = v.producer;
    if (!p || p.graph !== g || live.has(p)) continue;
    live.add(p);
    for (const r of p.inputs) if (r) stack.push(r);
    for (const s of p.subgraphs()) for (const n of s.allNodes()) for (const r of n.inputs) if (r && r.graph === g) stack.push(r);
  }
  return live;
}

/** Whether an initializer is a weight when the caller does not say: more than one element, or read by a layer op. */
function defaultTrainable(v: Value): boolean {
  return v.initializer!.size > 1 || v.uses.some((u) => PARAMETRIC.has(u.node.opType));
}

/** A deep copy through the wire form. */
function copyModel(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

/** Removes nodes the logits (and hint values) do not depend on (in reverse order, so that readers go before what they read). */
function removeDeadNodes(g: Graph, roots: readonly Value[]): void {
  const live = ancestorNodes(g, roots);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!live.has(n)) g.removeNode(n, { force: true });
  }
}

/** Renames whatever value holds `name` (other than `keep`) out of the way, so that the step graph can use the name. */
function freeName(g: Graph, name: string, keep?: Value): void {
  const v = g.lookup(name);
  if (!v || v === keep) return;
  if (v.initializer || v.isGraphInput) throw new GraphError(`The student has an input or initializer named "${name}", a name the training graph needs for its own ${name === 'logits' ? 'output' : 'input or output'}; rename it`);
  v.name = g.uniqueName(`${name}_student`);
}

/** Makes `v` a graph output called `name` (made unique): renamed when it is an unnamed intermediate, else through an Identity. */
function nameOutput(em: Emitter, v: Value, name: string, type: Value['type']): Value {
  const g = em.graph;
  let out = v;
  if (!v.producer || v.isGraphOutput || v.isGraphInput || v.initializer || v.name === 'logits' || v.name === 'loss') {
    em.at = undefined;
    out = em.op('Identity', [v]);
  }
  out.name = g.uniqueName(name);
  out.type = type;
  g.outputs.push(out);
  return out;
}

/** Turns an initializer into a graph input of the same name (same readers). */
function toInput(g: Graph, init: Value): void {
  const name = init.name;
  const input = g.createValue(`${name}__as_input`, { kind: 'tensor', elemType: init.initializer!.dtype, shape: [...init.initializer!.dims] });
  init.replaceAllUsesWith(input, { graphOutputs: false });
  g.removeInitializer(init);
  input.name = name;
  g.inputs.push(input);
}

// ---------------------------------------------------------------------------------------------------------------
// inferenceModel

/**
 * The student with trained weights and running statistics written into its initializers (BatchNormalization in
 * inference mode, as in the student), for saving or evaluation. The student itself is not changed.
 *
 * @example
 * ```ts
 * const trained = inferenceModel(student, new Map(tg.params.map((p) => [p.name, weights.get(p.name)!])), runningStats);
 * await saveModel(trained, 'student-trained.onnx');
 * ```
 */
export function inferenceModel(student: Model, params: Map<string, Tensor>, buffers: Map<string, Tensor>): Model {
  const model = copyModel(student);
  const g = model.graph;
  for (const [name, t] of [...params, ...buffers]) {
    const v = g.initializers.get(name);
    if (!v?.initializer) throw new GraphError(`No initializer named "${name}" in graph "${g.name}" to write the trained value into ${oneOf(g.initializers.keys())}`);
    const old = v.initializer;
    if (old.dtype !== t.dtype || old.dims.join() !== t.dims.join()) {
      throw new GraphError(expected(`a ${old.dtype} tensor of dims [${old.dims}]`, `initializer "${name}"`, `${t.dtype} [${t.dims}]`));
    }
    v.initializer = t;
  }
  for (const n of g.nodes) if (n.opType === 'BatchNormalization' && n.getInt('training_mode', 0) !== 0) n.setAttr('training_mode', attr.int(0));
  return model;
}
