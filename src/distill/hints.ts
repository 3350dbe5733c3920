/**
 * Hint (intermediate-feature) losses for distillation, after FitNets (Romero et al., 2015): a student tensor, mapped
 * by a learned 1×1 adapter to the teacher's channel count, is pulled towards a teacher tensor of the same spatial
 * size by `weight · MSE`. The adapter trains jointly with the student and is thrown away afterwards.
 *
 * How it reaches the training engine without a hint option in `train` (`attachHints`): the student is extended
 * into a *hinted* model that also holds
 * - the teacher's layers up to the hint tensors (prefixed `hint/teacher/`, reading the student's data input), so the
 *   target is computed inside the step graph from the very batch the student sees (augmented or not) — the
 *   training-graph builder treats them as constants: no gradient, BatchNormalization in inference mode;
 * - one adapter per hint: a Conv 1×1 for [B, C, H, W] tensors, a Gemm for [B, F] tensors;
 * - the hint terms in its metadata (`HINTS_METADATA_KEY`), which `buildTrainingGraph` reads.
 * The trained weights are then written back into the plain student (`inferenceModel`), so the output holds no trace
 * of the teacher or the adapters.
 *
 * Why a copy of the teacher's layers rather than reading the tensor from the teacher's session (Runner
 * `extraOutputs`) and feeding it: `train` feeds only data, labels and teacher logits, and feature maps are too large
 * to cache for a training set (60k × 64×14×14 floats is 3 GB). The price: when augmenting (no logits cache) the
 * teacher's first layers run twice per batch, once in its own session for the logits and once in the step graph.
 */
import { GraphError, OptionsError, oneOf } from '../errors.js';
import { inferShapes } from '../onnx/infer/index.js';
import { attr, type Dim, type Model, type Node, type Value } from '../onnx/ir.js';
import { decodeModelProto, encodeModel, modelFromProto } from '../onnx/proto.js';
import { Tensor } from '../onnx/tensor.js';
import { HINTS_METADATA_KEY, type HintLoss } from '../train/graph.js';
import { mulberry32 } from '../util/random.js';

/** One hint: a teacher tensor, the student tensor that learns to predict it, and the weight of the MSE term. */
export interface HintSpec {
  /** Value name in the teacher ([B, C, H, W] or [B, F]). */
  teacher: string;
  /** Value name in the student, of the teacher tensor's rank and spatial size (channels may differ). */
  student: string;
  /** Weight of `MSE(adapter(student), teacher)` in the loss (default 1). */
  weight?: number;
}

/** What `attachHints` returns. */
export interface HintedModel {
  /** The student extended with the teacher's layers up to the hint tensors, the adapters and the hint metadata. */
  model: Model;
  /** The hint terms as the training graph sees them (adapter output → teacher copy). */
  losses: HintLoss[];
  /** Per hint: the adapter's parameter names and shapes as [B, …] of the two tensors. */
  adapters: { teacher: string; student: string; weight: number; params: string[]; output: string; teacherShape: Dim[]; studentShape: Dim[] }[];
}

/**
 * The lowest and highest default-domain opsets between which a teacher and a student of different opsets may be
 * joined: ops changed from 13 to 17 only in types and defaulted attributes (the training graph is written at 17
 * anyway); at 18 the Reduce, Pad, Split and Resize forms changed.
 */
const JOINABLE_OPSETS = [13, 17] as const;

function copyModel(model: Model): Model {
  return modelFromProto(decodeModelProto(encodeModel(model)));
}

function fmt(s: readonly Dim[] | undefined): string {
  return s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : 'an unknown shape';
}

/**
 * Extends `student` for training with hint losses from `teacher` (see the module doc). Neither model is changed.
 * Errors name the tensors: an unknown name lists the model's values; tensors whose spatial sizes differ, or of
 * another rank than 2 or 4, are refused with both shapes.
 *
 * @example
 * ```ts
 * const { model, losses } = attachHints(student, teacher, [{ teacher: 'relu2_out', student: 'relu2_out', weight: 1 }], { seed: 1 });
 * const result = await train(model, data, { teacher, epochs: 5 }); // the hint terms are in the loss
 * ```
 */
export function attachHints(student: Model, teacher: Model, hints: readonly HintSpec[], options: { seed?: number } = {}): HintedModel {
  const seed = options.seed ?? 0;
  const merged = copyModel(student);
  const t = copyModel(teacher);
  inferShapes(merged);
  inferShapes(t);
  const g = merged.graph;
  const tg = t.graph;

  // opsets: equal, or both in the range where ops did not change meaning
  const so = student.opset() ?? 0;
  const to = teacher.opset() ?? 0;
  if (so !== to) {
    const [lo, hi] = JOINABLE_OPSETS;
    if (!(so >= lo && so <= hi && to >= lo && to <= hi)) {
      throw new OptionsError(`Hints need the teacher's layers inside the student's training graph, so their opsets must match or both lie in ${lo}–${hi}: the teacher is at opset ${to}, the student at ${so}; convert one of them`);
    }
    merged.opsetImports.set(merged.opsetImports.has('') || !merged.opsetImports.has('ai.onnx') ? '' : 'ai.onnx', Math.max(so, to));
  }
  for (const [domain, version] of t.opsetImports) {
    if (domain === '' || domain === 'ai.onnx') continue;
    const have = merged.opsetImports.get(domain);
    if (have !== undefined && have !== version) throw new OptionsError(`The teacher imports domain "${domain}" at version ${version}, the student at ${have}: hints cannot join them`);
    merged.opsetImports.set(domain, version);
  }

  // data inputs: the teacher's copy reads the student's
  const sIns = g.inputs.filter((v) => !v.initializer);
  const tIns = tg.inputs.filter((v) => !v.initializer);
  if (sIns.length !== 1 || tIns.length !== 1) {
    throw new OptionsError(`Hints need one data input in teacher and student; the teacher takes ${oneOf(tIns.map((v) => v.name))}, the student ${oneOf(sIns.map((v) => v.name))}`);
  }
  const sIn = sIns[0]!;
  const tIn = tIns[0]!;
  const sInShape = sIn.shape;
  const tInShape = tIn.shape;
  if (sInShape && tInShape && (sInShape.length !== tInShape.length || sInShape.some((d, k) => k > 0 && typeof d === 'number' && typeof tInShape[k] === 'number' && d !== tInShape[k]))) {
    throw new OptionsError(`Hints feed the student's input to the teacher's layers: the student's input "${sIn.name}" is ${fmt(sInShape)}, the teacher's "${tIn.name}" ${fmt(tInShape)}`);
  }

  // the tensors and their shapes
  const pairs = hints.map((h, i) => {
    const tv = tg.lookup(h.teacher);
    if (!tv) throw new OptionsError(`No tensor named "${h.teacher}" in the teacher for hints[${i}].teacher ${oneOf(tensorNames(t))}`);
    const sv = g.lookup(h.student);
    if (!sv) throw new OptionsError(`No tensor named "${h.student}" in the student for hints[${i}].student ${oneOf(tensorNames(student))}`);
    const ts = tv.shape ?? tv.initializer?.dims;
    const ss = sv.shape ?? sv.initializer?.dims;
    const what = `Hint teacher "${h.teacher}" ${fmt(ts)} → student "${h.student}" ${fmt(ss)}`;
    if (!ts || !ss) throw new OptionsError(`${what}: shape inference could not find both shapes`);
    if (ts.length !== ss.length || (ts.length !== 4 && ts.length !== 2)) {
      throw new OptionsError(`${what}: a 1×1 adapter joins tensors of the same rank, [batch, channels, height, width] or [batch, features]`);
    }
    if (ts.length === 4 && (ts[2] !== ss[2] || ts[3] !== ss[3] || typeof ts[2] !== 'number' || typeof ts[3] !== 'number')) {
      throw new OptionsError(`${what}: the spatial sizes differ (${ts[2]}×${ts[3]} vs ${ss[2]}×${ss[3]}); a 1×1 adapter maps channels only, so pick tensors of the same height and width`);
    }
    if (typeof ts[1] !== 'number' || typeof ss[1] !== 'number') throw new OptionsError(`${what}: the channel counts must be known`);
    const weight = h.weight ?? 1;
    if (!(Number.isFinite(weight) && weight > 0)) throw new OptionsError(`${what}: the weight must be a positive number, not ${weight}`);
    return { h, tv, sv, ts: [...ts], ss: [...ss], weight };
  });

  // the teacher's layers up to the hint tensors, renamed under hint/teacher/
  const live = new Set(ancestors(pairs.map((p) => p.tv)));
  const map = new Map<Value, Value>([[tIn, sIn]]);
  const mapped = (v: Value): Value => {
    const m = map.get(v);
    if (m) return m;
    if (!v.initializer) throw new GraphError(`Internal error: teacher value "${v.name}" has no producer in the hinted model`);
    const c = g.addInitializer(g.uniqueName(`hint/teacher/${v.name}`), v.initializer);
    map.set(v, c);
    return c;
  };
  for (const n of tg.nodes) {
    if (!live.has(n)) continue;
    if (n.subgraphs().length) throw new OptionsError(`Hints: teacher node ${n} has subgraphs, which cannot be copied into the student's training graph; pick an earlier teacher tensor`);
    const copy = g.addNode({
      opType: n.opType,
      domain: n.domain,
      name: g.uniqueNodeName(`hint/teacher/${n.name || n.opType}`),
      inputs: n.inputs.map((v) => (v ? mapped(v) : null)),
      outputs: n.outputs.map((o) => (o ? `hint/teacher/${o.name}` : null)),
      attributes: Object.fromEntries(n.attributes),
    });
    n.outputs.forEach((o, k) => {
      if (o) map.set(o, copy.outputs[k]!);
    });
  }

  // the adapters: PyTorch's default initialization, U(−1/√fanIn, 1/√fanIn), seeded per hint
  const losses: HintLoss[] = [];
  const adapters: HintedModel['adapters'] = [];
  pairs.forEach((p, i) => {
    const cin = p.ss[1] as number;
    const cout = p.ts[1] as number;
    const r = mulberry32((seed + 0x2545f491 * (i + 1)) | 0);
    const bound = 1 / Math.sqrt(cin);
    const draw = (n: number) => Float32Array.from({ length: n }, () => (2 * r() - 1) * bound);
    const conv = p.ts.length === 4;
    const w = g.addInitializer(g.uniqueName(`hint${i}/adapter.weight`), Tensor.from('float32', conv ? [cout, cin, 1, 1] : [cout, cin], draw(cout * cin)));
    const b = g.addInitializer(g.uniqueName(`hint${i}/adapter.bias`), Tensor.from('float32', [cout], draw(cout)));
    const node = g.addNode({
      opType: conv ? 'Conv' : 'Gemm',
      name: g.uniqueNodeName(`hint${i}/adapter`),
      inputs: [p.sv, w, b],
      outputs: [`hint${i}/adapter_out`],
      attributes: conv ? { kernel_shape: attr.ints([1, 1]) } : { transB: attr.int(1) },
    });
    const out = node.output(0);
    const target = mapped(p.tv);
    losses.push({ student: out.name, target: target.name, weight: p.weight });
    adapters.push({ teacher: p.h.teacher, student: p.h.student, weight: p.weight, params: [w.name, b.name], output: out.name, teacherShape: p.ts, studentShape: p.ss });
  });
  merged.metadata.set(HINTS_METADATA_KEY, JSON.stringify(losses));
  return { model: merged, losses, adapters };
}

/** The tensors a hint can name: node outputs, in graph order. */
function tensorNames(m: Model): string[] {
  return m.graph.nodes.flatMap((n) => n.outputs.flatMap((o) => (o ? [o.name] : [])));
}

/** The nodes the given values depend on. */
function ancestors(roots: readonly Value[]): Set<Node> {
  const live = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const p = stack.pop()!.producer;
    if (!p || live.has(p)) continue;
    live.add(p);
    for (const r of p.inputs) if (r) stack.push(r);
  }
  return live;
}
