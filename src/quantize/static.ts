/**
 * Static (calibrated) int8 quantization in QDQ form: QuantizeLinear / DequantizeLinear pairs on activations, int8
 * weights and int32 biases behind DequantizeLinear, placed so that onnxruntime fuses each group into an integer
 * kernel (QLinearConv, QGemm, QLinearMatMul, QLinearAdd, …). `format: 'qoperator'` then rewrites the groups into
 * those ops directly (`qoperator.ts`).
 *
 * Steps, on a copy of the model (the input is never changed):
 * 1. Clean up: remove Identity / inference Dropout, fold BatchNormalization into the Conv / Gemm / MatMul before
 *    it, remove unused nodes. Value names keep meaning what they meant in the input model — a Conv that absorbed a
 *    BatchNormalization takes the BN output's name — so ranges calibrated on the input model apply here.
 * 2. Plan: visit nodes in topological order and ask each op's handler (`ops/table.ts`; the fallback for other ops)
 *    what to quantize. Placement rules (see `shared/notes/int8-probe.md` for the measurements behind them):
 *    - a Q/DQ pair only where a quantized op reads or writes the tensor; one pair per tensor, shared by its readers;
 *    - a Relu / Clip right after a quantized op is fused: no Q between them, the Q after the activation, whose
 *      range starts at 0 so the zero point makes the activation redundant;
 *    - ops that move values (Reshape, Transpose, Flatten, Squeeze, MaxPool, Concat, …) share one scale and zero
 *      point across their inputs and outputs (a union-find over tensors; a group's range is the union of its
 *      members'), and are quantized only when their input already is;
 *    - Softmax and Sigmoid outputs have fixed params for [0, 1];
 *    - graph inputs and outputs keep their float types; a quantized op writing a graph output gets its Q/DQ and the
 *      DQ output takes the output's name, except Gemm / MatMul, which onnxruntime runs with a float output.
 * 3. Emit: per-channel symmetric int8 weights (one DequantizeLinear per weight), int32 biases with scale
 *    inputScale × weightScale, then the activation Q/DQ pairs, with scale / zero-point initializers shared
 *    between tensors whose params are equal.
 *
 * The same plan drives `tensorsToCalibrate`, so calibration observes exactly the tensors that get a Q/DQ pair
 * (and none whose params are fixed or fully overridden).
 */
import { z } from 'zod';
import { OptionsError, PassError, oneOf } from '../errors.js';
import { toFloat32 } from '../onnx/codecs.js';
import { constantOf, dropUnreadConstants, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { foldBatchNormPass } from '../onnx/hygiene/foldBatchNorm.js';
import { removeIdentityPass } from '../onnx/hygiene/removeIdentity.js';
import { removeUnusedPass } from '../onnx/hygiene/removeUnused.js';
import { inferShapes } from '../onnx/infer/index.js';
import type { Model, Node, Use, Value } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';
import { parseOptions, type Pass, type PassResult } from '../pass.js';
import { STATIC_HANDLERS, staticHandlerFor, type OpPlan, type OutputPlan, type PlanContext, type QuantizePlan } from './ops/table.js';
import { QdqBuilder, computeQParams, minMax, quantizeBias, quantizeWeight, quantizeWithParams, rint, typeRange, type QParams, type QuantizedTensor } from './qdq.js';
import { toQOperator } from './qoperator.js';
import { ensureOpset } from '../onnx/opset.js';
import type { FallbackReason, NodeReport, QuantizeOutput, TensorRange } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Options

const FALLBACK_REASONS = ['no-integer-kernel', 'excluded', 'accuracy', 'latency', 'not-constant-weight', 'unsupported-shape'] as const satisfies readonly FallbackReason[];
const reason = z.enum(FALLBACK_REASONS);

/**
 * Options of static quantization, declared once: types, defaults and descriptions drive validation, the CLI's
 * `--help` and config files.
 *
 * @example
 * ```ts
 * staticOptions.parse({ exclude: ['*\/head/*'], keepFloat: { '/features/features.0/Conv': 'latency' } });
 * ```
 */
export const staticOptions = z.strictObject({
  perChannel: z.boolean().default(true).describe('Quantize Conv / Gemm / MatMul weights per output channel (true) or per tensor'),
  activationType: z.enum(['uint8', 'int8']).default('uint8').describe('Integer type of activations; uint8 is what onnxruntime runs fastest on x86'),
  weightType: z.enum(['int8', 'uint8']).default('int8').describe('Integer type of weights (int8: symmetric, zero point 0)'),
  symmetricActivations: z.boolean().default(false).describe('Symmetric activation ranges (zero point 0 / 128); stops Relu / Clip fusion'),
  reduceRange: z.boolean().default(false).describe('7-bit weights, for CPUs without VNNI whose u8×s8 pair sums would overflow int16'),
  opTypes: z.array(z.string()).optional().describe('Op types to quantize (default: every op with a handler)'),
  exclude: z.array(z.string()).default([]).describe('Nodes to leave in float: node names, glob patterns over node names ("*/head/*"), or op types'),
  overrides: z
    .record(
      z.string(),
      z.strictObject({
        min: z.number().optional().describe('Range minimum replacing the calibrated one'),
        max: z.number().optional().describe('Range maximum replacing the calibrated one'),
        type: z.enum(['uint8', 'int8']).optional().describe('Integer type of this tensor'),
      }),
    )
    .default({})
    .describe('Per-tensor range and type overrides, by tensor name'),
  keepFloat: z
    .union([z.array(z.string()), z.record(z.string(), z.union([reason, z.strictObject({ reason, detail: z.string().optional() })]))])
    .default([])
    .describe('Nodes forced to float by the accuracy / latency search: names, or names with the reason (and detail) to report'),
  format: z.enum(['qdq', 'qoperator']).default('qdq').describe('qdq: QuantizeLinear/DequantizeLinear pairs; qoperator: QLinearConv, QLinearMatMul, QGemm, … ops'),
});

/** Options as callers give them; `keepFloat` may also be a Set of node names or a Map to reasons. */
export type StaticQuantizeOptions = Omit<z.input<typeof staticOptions>, 'keepFloat'> & {
  keepFloat?: z.input<typeof staticOptions>['keepFloat'] | ReadonlySet<string> | ReadonlyMap<string, FallbackReason | { reason: FallbackReason; detail?: string }>;
};
/** Options with defaults filled in. */
export type ResolvedStaticOptions = z.output<typeof staticOptions>;

/**
 * Validates options (OptionsError naming the field) and fills in defaults.
 *
 * @example
 * ```ts
 * resolveStaticOptions({ keepFloat: new Set(['conv1']) }).keepFloat; // ['conv1']
 * ```
 */
export function resolveStaticOptions(options: StaticQuantizeOptions = {}): ResolvedStaticOptions {
  const raw: Record<string, unknown> = { ...options };
  const kf = options.keepFloat;
  if (kf instanceof Set) raw.keepFloat = [...kf];
  else if (kf instanceof Map) raw.keepFloat = Object.fromEntries(kf);
  const o = parseOptions(staticOptions, raw, 'quantize.static');
  const unknown = (o.opTypes ?? []).filter((t) => !Object.hasOwn(STATIC_HANDLERS, t));
  if (unknown.length) throw new OptionsError(`Invalid options for quantize.static: opTypes ${unknown.map((t) => JSON.stringify(t)).join(', ')} have no handler ${oneOf(Object.keys(STATIC_HANDLERS), 40)}`);
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// Step 1: clean-up on a copy

/** A deep copy of a model through its bytes. */
function copyModel(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

function runSync(pass: Pass, model: Model): PassResult {
  const r = pass.run(model, pass.options.parse({}), {});
  if (r instanceof Promise) throw new PassError(`Pass ${pass.name} is asynchronous; quantize.static runs only synchronous clean-ups`);
  return r;
}

/**
 * Removes Identity / Dropout, folds BatchNormalization and removes unused nodes, in place; then gives each folded
 * BN's output name back to the value that now carries it, so that every value name means what it meant before.
 * Returns the clean-up notes.
 */
function cleanForQuantization(model: Model): string[] {
  const g = model.graph;
  const notes: string[] = [];
  const add = (r: PassResult) => notes.push(...(r.notes ?? []).filter((n) => !n.startsWith('left ')));
  add(runSync(removeIdentityPass as Pass, model));
  const bnOutputs = g.nodes
    .filter((n) => n.opType === 'BatchNormalization' && isOnnxDomain(n) && n.outputs[0]?.uses.length)
    .map((n) => ({ name: n.output(0).name, use: n.output(0).uses[0]! }));
  add(runSync(foldBatchNormPass as Pass, model));
  for (const { name, use } of bnOutputs) {
    const v = use.node.inputs[use.index];
    if (v && v.name !== name && !v.initializer && !v.isGraphInput && !v.isGraphOutput && g.uniqueName(name) === name) v.name = name;
  }
  add(runSync(removeUnusedPass as Pass, model));
  g.sort();
  return notes;
}

/** Element types and shapes for the planner, without growing the saved value_info. */
function inferTypes(model: Model, notes: string[]): void {
  const g = model.graph;
  const listed = [...g.valueInfo];
  try {
    inferShapes(model);
  } catch (e) {
    notes.push(`shape inference failed (${(e as Error).message}): tensors of unknown type stay float`);
  }
  g.valueInfo.splice(0, g.valueInfo.length, ...listed);
}

// ---------------------------------------------------------------------------------------------------------------
// Step 2: the plan

/** What the planner decided for one node. */
type Decision =
  | { kind: 'quantize'; plan: QuantizePlan; groupOutput?: Value }
  | { kind: 'fused'; into: Node; bounds: { min: number; max: number } }
  | { kind: 'float'; reason: FallbackReason; detail: string };

interface Plan {
  model: Model;
  opset: number;
  options: ResolvedStaticOptions;
  decisions: Map<Node, Decision>;
  /** Tensors that get a Q/DQ pair, in decision order. */
  quantized: Set<Value>;
  /** Uses that read the DQ output, for tensors whose producer stays float (otherwise every reader does). */
  readers: Map<Value, Use[]>;
  /** Union-find over tensors that share params. */
  parent: Map<Value, Value>;
  fixed: Map<Value, Extract<OutputPlan, { kind: 'fixed' }>>;
  notes: string[];
}

function find(plan: Plan, v: Value): Value {
  let r = v;
  for (let p = plan.parent.get(r); p && p !== r; p = plan.parent.get(r)) r = p;
  return r;
}

function union(plan: Plan, a: Value, b: Value): void {
  const ra = find(plan, a);
  const rb = find(plan, b);
  if (ra !== rb) plan.parent.set(rb, ra);
}

/** A glob over node names: `*` any run of characters, `?` one character. */
function globRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

function planStatic(model: Model, options: ResolvedStaticOptions, notes: string[]): Plan {
  const g = model.graph;
  const opset = model.opset() ?? 1;
  if (opset < 10) throw new PassError(`quantize.static needs a default-domain opset of at least 10 (QuantizeLinear), but model "${g.name}" imports ${opset}`);
  const plan: Plan = { model, opset, options, decisions: new Map(), quantized: new Set(), readers: new Map(), parent: new Map(), fixed: new Map(), notes };

  const excludes = options.exclude.map((p) => ({ p, re: /[*?]/.test(p) ? globRegExp(p) : undefined }));
  const keepFloat = new Map<string, { reason: FallbackReason; detail?: string }>(
    Array.isArray(options.keepFloat)
      ? options.keepFloat.map((n) => [n, { reason: 'accuracy' }])
      : Object.entries(options.keepFloat).map(([n, r]) => [n, typeof r === 'string' ? { reason: r } : r]),
  );
  const matched = new Set<string>();
  const forced = (n: Node, { opTypes = true } = {}): { reason: FallbackReason; detail: string } | undefined => {
    const kf = keepFloat.get(n.name);
    if (kf) {
      matched.add(n.name);
      return { reason: kf.reason, detail: kf.detail ?? 'kept in float by the caller' };
    }
    for (const { p, re } of excludes) {
      if (n.name === p || n.opType === p || re?.test(n.name)) {
        matched.add(p);
        return { reason: 'excluded', detail: `excluded by "${p}"` };
      }
    }
    if (opTypes && options.opTypes && !options.opTypes.includes(n.opType)) return { reason: 'excluded', detail: `${n.opType} is not among opTypes` };
    return undefined;
  };

  const isFloatActivation = (v: Value | null | undefined): boolean => !!v && !constantOf(v) && v.type?.kind === 'tensor' && v.elemType === 'float32';
  const floatConstant = (v: Value | null | undefined): Tensor | undefined => {
    const t = constantOf(v);
    return t && t.dtype === 'float32' ? t : undefined;
  };
  const float = (reason: FallbackReason, detail: string) => ({ quantize: false as const, reason, detail });
  const ctxFor = (node: Node): PlanContext => ({
    node,
    opset,
    activationType: options.activationType,
    perChannel: options.perChannel,
    isQuantized: (v) => !!v && plan.quantized.has(v),
    isFloatActivation,
    floatConstant,
    float,
    shareParams(inputs: number[]): OpPlan {
      const present = inputs.filter((i) => node.inputs[i]);
      if (!present.length || present.some((i) => !isFloatActivation(node.inputs[i]))) return float('unsupported-shape', 'an input is not a float32 tensor computed at run time');
      if (!present.some((i) => plan.quantized.has(node.inputs[i]!))) return float('no-integer-kernel', 'its input stays float, so it runs in float (quantizing it would only add a Q/DQ pair)');
      return { quantize: true, activations: present, output: { kind: 'shared', inputs: present } };
    },
  });

  const markRead = (v: Value, use: Use) => {
    plan.quantized.add(v);
    if (!plan.readers.has(v)) plan.readers.set(v, []);
    plan.readers.get(v)!.push(use);
  };

  /** The Relu / Clip that can be fused after `y`'s producer, if any. */
  const fusibleAfter = (y: Value): { node: Node; bounds: { min: number; max: number } } | undefined => {
    if (options.symmetricActivations || y.isGraphOutput || y.uses.length !== 1) return undefined;
    const { node: act, index } = y.uses[0]!;
    const h = isOnnxDomain(act) && index === 0 ? STATIC_HANDLERS[act.opType] : undefined;
    if (!h?.fusible || act.graph !== g || forced(act, { opTypes: false }) || !isFloatActivation(act.outputs[0])) return undefined;
    const r = h.fusible(ctxFor(act));
    return typeof r === 'string' ? undefined : { node: act, bounds: r };
  };

  for (const node of g.nodes) {
    if (plan.decisions.has(node)) continue;
    const f = forced(node);
    if (f) {
      plan.decisions.set(node, { kind: 'float', ...f });
      continue;
    }
    const handler = staticHandlerFor(node.opType, node.domain);
    const p: OpPlan =
      handler.sinceOpset && opset < handler.sinceOpset ? float('no-integer-kernel', `its integer kernel needs opset ${handler.sinceOpset}; the model imports ${opset}`) : handler.plan(ctxFor(node));
    if (!p.quantize) {
      plan.decisions.set(node, { kind: 'float', reason: p.reason, detail: p.detail });
      continue;
    }
    for (const i of p.activations) markRead(node.input(i), { node, index: i });
    const out = p.output;
    if (out.kind === 'shared') {
      for (const o of node.outputs) {
        if (!o) continue;
        for (const i of out.inputs) union(plan, node.input(i), o);
        if (!o.isGraphOutput) plan.quantized.add(o);
      }
      plan.decisions.set(node, { kind: 'quantize', plan: p });
      continue;
    }
    let groupOutput = node.output(0);
    if (out.kind === 'own' && out.absorbsActivation) {
      const act = fusibleAfter(groupOutput);
      if (act) {
        plan.decisions.set(act.node, { kind: 'fused', into: node, bounds: act.bounds });
        groupOutput = act.node.output(0);
      }
    }
    if (out.kind === 'fixed') plan.fixed.set(groupOutput, out);
    if (out.kind === 'fixed' || out.required) plan.quantized.add(groupOutput);
    plan.decisions.set(node, { kind: 'quantize', plan: p, groupOutput });
  }

  // an activation fused after a Gemm / MatMul whose output nobody quantizes runs in float after its float output
  for (const [node, d] of plan.decisions) {
    if (d.kind === 'fused' && !plan.quantized.has(node.output(0))) {
      plan.decisions.set(node, { kind: 'float', reason: 'no-integer-kernel', detail: `runs in float on the float output of ${d.into}` });
    }
  }
  for (const name of keepFloat.keys()) if (!matched.has(name)) notes.push(`keepFloat names "${name}", which is no node of the main graph`);
  for (const { p } of excludes) if (!matched.has(p) && !g.nodes.some((n) => n.opType === p)) notes.push(`exclude entry "${p}" matches no node`);
  if (g.nodes.some((n) => n.subgraphs().length)) notes.push('subgraphs (If / Loop / Scan bodies) are left in float');
  return plan;
}

/** Quantized tensors grouped by shared params, in a deterministic order (graph inputs, then node outputs). */
function paramGroups(plan: Plan): Value[][] {
  const g = plan.model.graph;
  const ordered = [...g.inputs, ...g.nodes.flatMap((n) => n.outputs)].filter((v): v is Value => !!v && plan.quantized.has(v));
  const groups = new Map<Value, Value[]>();
  for (const v of ordered) {
    const r = find(plan, v);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(v);
  }
  return [...groups.values()];
}

/** Whether a tensor only carries values of other tensors of its group (the output of a shared-params op). */
function isDerived(plan: Plan, v: Value): boolean {
  const d = v.producer && plan.decisions.get(v.producer);
  return d?.kind === 'quantize' && d.plan.output.kind === 'shared';
}

/** Whether every value of a group comes from tensors with fixed params (Softmax -> Reshape): the params are fixed. */
function allFixed(plan: Plan, members: Value[]): boolean {
  return members.every((v) => plan.fixed.has(v) || isDerived(plan, v));
}

/** Whether a group's params need calibrated ranges (not fixed, and not both min and max overridden). */
function needsCalibration(plan: Plan, members: Value[]): boolean {
  if (allFixed(plan, members)) return false;
  const o = members.map((v) => plan.options.overrides[v.name]).filter((x) => x);
  return !(o.some((x) => x!.min !== undefined) && o.some((x) => x!.max !== undefined));
}

/** Cleans a copy and plans it. */
function prepare(model: Model, options: ResolvedStaticOptions): Plan {
  const copy = copyModel(model);
  // older exports (opset 6–9) are raised to 13, where QuantizeLinear and per-channel DequantizeLinear exist, with
  // the nodes whose op changed rewritten to mean the same (onnx/opset.ts); a model that cannot be raised keeps its
  // opset: from 10 it is quantized per tensor, below 10 it cannot be
  const raised: string[] = [];
  const why = ensureOpset(copy, 13, raised);
  if (why && (copy.opset() ?? 1) < 10) throw new PassError(`quantize.static needs QuantizeLinear (opset 10), but ${why}`);
  const notes = [...raised, ...cleanForQuantization(copy)];
  inferTypes(copy, notes);
  return planStatic(copy, options, notes);
}

/**
 * The tensors calibration must observe for `quantizeStatic` with the same options: exactly those that get a
 * Q/DQ pair, minus those whose params are fixed (Softmax, Sigmoid outputs) or fully overridden. The names are the
 * input model's (clean-up keeps names meaning the same data), so calibrate the model as given.
 *
 * @example
 * ```ts
 * const names = tensorsToCalibrate(model);
 * const runner = await Runner.create(model, { extraOutputs: names });
 * ```
 */
export function tensorsToCalibrate(model: Model, options: StaticQuantizeOptions = {}): string[] {
  const plan = prepare(model, resolveStaticOptions(options));
  return paramGroups(plan)
    .filter((members) => needsCalibration(plan, members))
    .flat()
    .map((v) => v.name);
}

// ---------------------------------------------------------------------------------------------------------------
// Step 3: params and emission

/** Whether Q with params `p` makes a Relu / Clip with these bounds redundant (onnxruntime's IsClipMadeRedundantByQ). */
function madeRedundant(opType: string, bounds: { min: number; max: number }, p: QParams): boolean {
  const [qmin, qmax] = typeRange(p.type);
  if (opType === 'Relu') return p.zeroPoint === qmin;
  const lo = rint(Math.fround(bounds.min / p.scale)) + p.zeroPoint;
  const hi = rint(Math.fround(bounds.max / p.scale)) + p.zeroPoint;
  return lo <= qmin && hi >= qmax;
}

function resolveParams(plan: Plan, ranges: ReadonlyMap<string, TensorRange>): Map<Value, QParams> {
  const { options } = plan;
  const out = new Map<Value, QParams>();
  const used = new Set<string>();
  const groupOf = new Map<Value, Value[]>();
  const compute = (members: Value[], widen?: TensorRange): QParams => {
    let type = options.activationType;
    for (const v of members) {
      const t = options.overrides[v.name]?.type;
      if (t) {
        type = t;
        break;
      }
    }
    const fixed = members.map((v) => plan.fixed.get(v)).filter((x) => x !== undefined);
    if (fixed.length && allFixed(plan, members)) return fixed[0]!.params(type);
    // fixed members joined with calibrated ones (Concat of a Softmax and another tensor): the union of their ranges
    let lo = Math.min(Infinity, ...fixed.map((f) => f.range.min));
    let hi = Math.max(-Infinity, ...fixed.map((f) => f.range.max));
    let oMin: number | undefined;
    let oMax: number | undefined;
    for (const v of members) {
      const r = ranges.get(v.name);
      if (r) {
        lo = Math.min(lo, r.min);
        hi = Math.max(hi, r.max);
      }
      const o = options.overrides[v.name];
      if (o) used.add(v.name);
      if (o?.min !== undefined) oMin = Math.min(oMin ?? Infinity, o.min);
      if (o?.max !== undefined) oMax = Math.max(oMax ?? -Infinity, o.max);
    }
    if (oMin !== undefined) lo = oMin;
    if (oMax !== undefined) hi = oMax;
    if (widen) {
      lo = widen.min;
      hi = widen.max;
    }
    if (!(lo <= hi)) {
      const readers = members.flatMap((v) => v.consumers).map(String);
      throw new PassError(
        `No calibrated range for tensor${members.length > 1 ? 's' : ''} ${members.map((v) => `"${v.name}"`).join(', ')} (read by ${readers.slice(0, 3).join(', ') || 'no node'}): calibrate the tensors tensorsToCalibrate() lists (${ranges.size} range${ranges.size === 1 ? '' : 's'} given)`,
      );
    }
    return computeQParams({ min: lo, max: hi }, type, { symmetric: options.symmetricActivations, what: `the range of tensor "${members[0]!.name}"` });
  };
  for (const members of paramGroups(plan)) {
    const p = compute(members);
    for (const v of members) {
      out.set(v, p);
      groupOf.set(v, members);
    }
  }
  // a fused Relu / Clip must be made redundant by the Q after it, or onnxruntime cannot fuse the op before it
  for (const [node, d] of plan.decisions) {
    if (d.kind !== 'fused') continue;
    const y = node.output(0);
    let p = out.get(y)!;
    if (!madeRedundant(node.opType, d.bounds, p) && node.opType === 'Clip') {
      const members = groupOf.get(y)!;
      p = compute(members, d.bounds);
      for (const v of members) out.set(v, p);
    }
    if (!madeRedundant(node.opType, d.bounds, p)) {
      plan.decisions.set(node, { kind: 'float', reason: 'unsupported-shape', detail: `the params of "${y.name}" (zero point ${p.zeroPoint}) do not make it redundant, so it stays between ${d.into} and its Q` });
      plan.notes.push(`${node} stays float between ${d.into} and the Q of "${y.name}": onnxruntime will not fuse ${d.into}`);
    }
  }
  for (const name of Object.keys(options.overrides)) if (!used.has(name)) plan.notes.push(`override for "${name}" unused: that tensor gets no Q/DQ pair`);
  return out;
}

function bitsKey(a: Float32Array): string {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length), (x) => x.toString(36)).join(',');
}

/** Writes int8 weights and int32 biases of one quantized node behind DequantizeLinear nodes. */
function emitWeights(plan: Plan, node: Node, p: QuantizePlan, params: Map<Value, QParams>, b: QdqBuilder): void {
  const { options } = plan;
  const perChannel = options.perChannel && plan.opset >= 13;
  const before = [...node.inputs];
  const weights = new Map<number, { v: Value; x: Float32Array; dims: readonly number[]; axis?: number; q: QuantizedTensor; kind: string }>();
  for (const w of p.weights ?? []) {
    const v = node.input(w.input);
    const t = constantOf(v)!;
    let x = toFloat32(t.data(), t.dtype, t.size);
    if (w.multiplier !== undefined && w.multiplier !== 1) x = x.map((e) => e * w.multiplier!); // Gemm: alpha·B
    const axis = perChannel && w.kind === 'weight' ? w.axis : undefined;
    const q =
      w.kind === 'weight'
        ? quantizeWeight(x, t.dims, options.weightType, { axis, reduceRange: options.reduceRange })
        : quantizeWithParams(x, t.dims, computeQParams(minMax(x), options.activationType, { symmetric: options.symmetricActivations, what: `constant "${v.name}"` }));
    weights.set(w.input, { v, x, dims: t.dims, axis, q, kind: w.kind });
  }
  if (p.bias) {
    const bv = node.input(p.bias.input);
    const bt = constantOf(bv)!;
    let x = toFloat32(bt.data(), bt.dtype, bt.size);
    if (p.bias.multiplier !== undefined && p.bias.multiplier !== 1) x = x.map((e) => e * p.bias!.multiplier!); // Gemm: beta·C
    let dims = bt.dims;
    if (x.length === 1 && p.bias.channels > 1) {
      x = new Float32Array(p.bias.channels).fill(x[0]!); // one value broadcast to [N]
      dims = [p.bias.channels];
    }
    const w = weights.get(p.bias.weight)!;
    const sx = params.get(node.input(p.bias.activation))!.scale;
    const qb = quantizeBias(x, sx, w.q.scales);
    if (qb.raised.length) {
      w.q = quantizeWeight(w.x, w.dims, options.weightType, { axis: w.axis, reduceRange: options.reduceRange, minScales: qb.weightScales });
      plan.notes.push(`${node}: raised the weight scale of ${qb.raised.length} channel${qb.raised.length === 1 ? '' : 's'} so that the int32 bias fits`);
    }
    const perAxis = qb.scales.length > 1;
    const dq = b.dequantizedConstant(`bias|${bv.name}|${bitsKey(qb.scales)}`, bv.name, { dims, data: qb.data, type: 'int32', scales: qb.scales, axis: perAxis ? dims.length - 1 : undefined }, node);
    node.setInput(p.bias.input, dq); // C -> DQ(int32 C, inputScale·weightScale)
  }
  for (const [input, w] of weights) {
    const key = `${w.kind}|${w.v.name}|${w.axis}|${bitsKey(w.q.scales)}|${Array.from(w.q.zeroPoints).join(',')}`;
    node.setInput(input, b.dequantizedConstant(key, w.v.name, w.q, node)); // W -> DQ(int8 W, scales)
  }
  for (const [k, a] of Object.entries(p.setAttributes ?? {})) node.setAttr(k, a);
  dropUnreadConstants(before);
}

/** One row per node of the cleaned graph; Constant nodes (data, not computation) are left out. */
function report(plan: Plan, nodes: Node[]): NodeReport[] {
  return nodes.filter((n) => !(n.opType === 'Constant' && isOnnxDomain(n))).map((n): NodeReport => {
    const d = plan.decisions.get(n);
    if (!d) return { node: n.name, opType: n.opType, quantized: false, reason: 'no-integer-kernel', detail: 'not planned' };
    if (d.kind === 'fused') return { node: n.name, opType: n.opType, quantized: true, detail: `fused into ${d.into}: the Q after it makes it redundant` };
    if (d.kind === 'float') return { node: n.name, opType: n.opType, quantized: false, reason: d.reason, detail: d.detail };
    const floatOut = d.groupOutput && !plan.quantized.has(d.groupOutput);
    return { node: n.name, opType: n.opType, quantized: true, ...(floatOut ? { detail: 'integer kernel with a float output' } : {}) };
  });
}

/**
 * Quantizes a model statically from calibrated activation ranges (keyed by tensor name; see `tensorsToCalibrate`).
 * Returns a new model (the input is not changed) and a per-node report. Same model, ranges and options give
 * byte-identical output.
 *
 * Throws an OptionsError for invalid options and a PassError naming the tensor when a needed range is missing.
 *
 * @example
 * ```ts
 * const names = tensorsToCalibrate(model);
 * const ranges = new Map(names.map((n) => [n, { min: -1, max: 1 }]));
 * const { model: int8, report } = quantizeStatic(model, ranges, { exclude: ['*\/head/*'] });
 * report.quantizedByOp; // { Conv: 2, Gemm: 2, … }
 * ```
 */
export function quantizeStatic(model: Model, ranges: ReadonlyMap<string, TensorRange>, options: StaticQuantizeOptions = {}): QuantizeOutput {
  const opts = resolveStaticOptions(options);
  const plan = prepare(model, opts);
  const g = plan.model.graph;
  if (opts.perChannel && plan.opset < 13) plan.notes.push(`weights are quantized per tensor: per-channel DequantizeLinear needs opset 13 (the model imports ${plan.opset})`);
  const nodes = [...g.nodes];
  const params = resolveParams(plan, ranges);
  const b = new QdqBuilder(g);

  for (const node of nodes) {
    const d = plan.decisions.get(node);
    if (d?.kind === 'quantize') emitWeights(plan, node, d.plan, params, b);
  }
  for (const members of paramGroups(plan)) {
    for (const v of members) {
      const d = v.producer && plan.decisions.get(v.producer);
      // a quantized producer must write only to its Q (onnxruntime's fusion condition): every reader reads the DQ
      const all = d !== undefined && (d.kind === 'quantize' || d.kind === 'fused');
      b.quantizeValue(v, params.get(v)!, all ? 'all' : (plan.readers.get(v) ?? []));
    }
  }
  g.sort();
  const nodeReports = report(plan, nodes);
  const quantizedByOp: Record<string, number> = {};
  for (const r of nodeReports) if (r.quantized) quantizedByOp[r.opType] = (quantizedByOp[r.opType] ?? 0) + 1;
  const notes = [...plan.notes];
  const left = new Map<string, number>();
  for (const r of nodeReports) if (!r.quantized) left.set(`${r.opType} (${r.reason})`, (left.get(`${r.opType} (${r.reason})`) ?? 0) + 1);
  if (left.size) notes.push(`left in float: ${[...left].map(([k, n]) => `${k} ×${n}`).join(', ')}; their quantized inputs are dequantized in front of them`);
  if (opts.format === 'qoperator') notes.push(...toQOperator(plan.model).notes);
  const problems = g.problems();
  if (problems.length) throw new PassError(`quantize.static produced an invalid graph: ${problems.slice(0, 5).join('; ')}`);
  return { model: plan.model, report: { mode: 'static', nodes: nodeReports, quantizedByOp, notes } };
}
