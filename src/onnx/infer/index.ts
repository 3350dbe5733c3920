/**
 * Type and shape inference for the ops compression touches.
 *
 * The walk visits each graph's nodes in topological order (subgraph bodies before the node that holds them),
 * asks the op's handler (`table.ts`) for its outputs' types, and records them on the values. Alongside types it
 * propagates "partial values": the elements of small rank-0/1 tensors, taken from initializers and Constant
 * nodes and carried through Shape, Gather, Slice, Concat, Cast, arithmetic and the like, each element a number,
 * a symbol such as "batch", or null. That is how Reshape targets computed at run time (PyTorch exports
 * `Shape → Gather → Unsqueeze → Concat → Reshape`) still give fixed or symbolic dims.
 *
 * Unknown ops, other domains, and ops whose inputs are unknown leave their outputs unknown; a contradiction the
 * model states (Conv channels, MatMul inner dims, broadcasting, element counts) throws a GraphError naming the
 * node and both shapes.
 */
import { GraphError } from '../../errors.js';
import { nodeReads, type Dim, type Graph, type Model, type Node, type TensorType, type Value, type ValueType } from '../ir.js';
import { InferContext, tensorElements } from './context.js';
import { formatShape } from './dims.js';
import { handlerFor } from './table.js';

export type { Handler, Inferred } from './context.js';
export { InferContext } from './context.js';
export { HANDLERS, handlerFor } from './table.js';
export { broadcastDim, broadcastShapes, formatShape } from './dims.js';

/** Options for `inferShapes`. */
export interface InferShapesOptions {
  /**
   * Replace types the model already states (value_info, graph outputs) with inferred ones. By default a stated
   * type is kept, and only unknown parts of it (no element type, unknown rank, unknown dims) are filled in.
   */
  overwrite?: boolean;
}

/** What `inferShapes` did. */
export interface InferShapesResult {
  /** How many values got a new or more complete type. */
  inferred: number;
  /** Node outputs still without a tensor shape afterwards (unknown op or domain, unknown inputs, data-dependent), by value name. */
  unknown: string[];
}

/** The opset assumed when a model imports none for the default domain. */
const LATEST_OPSET = 21;

interface Walk {
  readonly model: Model;
  readonly overwrite: boolean;
  readonly values: Map<Value, readonly Dim[] | null>;
  inferred: number;
  readonly unknown: string[];
}

/**
 * Infers element types and shapes of node outputs in the main graph and in subgraph bodies, sets `value.type`
 * where it was unknown (everywhere with `overwrite`), and appends newly typed intermediate values to
 * `graph.valueInfo` so that they are written to value_info. Symbolic dims stay symbolic (`batch` stays `batch`).
 *
 * @example
 * ```ts
 * const model = await loadModel('fixtures/fmnist-cnn.onnx');
 * const { inferred, unknown } = inferShapes(model);
 * model.graph.value('/features/features.0/Conv_output_0').shape; // ['batch', 16, 28, 28]
 * ```
 */
export function inferShapes(model: Model, options: InferShapesOptions = {}): InferShapesResult {
  const walk: Walk = { model, overwrite: options.overwrite ?? false, values: new Map(), inferred: 0, unknown: [] };
  inferGraph(model.graph, walk);
  return { inferred: walk.inferred, unknown: walk.unknown };
}

function inferGraph(g: Graph, walk: Walk): void {
  const listed = new Set(g.valueInfo);
  for (const node of topologicalOrder(g)) {
    for (const sub of node.subgraphs()) inferGraph(sub, walk);
    inferNode(node, walk, listed);
  }
}

function inferNode(node: Node, walk: Walk, listed: Set<Value>): void {
  const handler = handlerFor(node.opType, node.domain);
  const opset = walk.model.opset(node.domain) ?? walk.model.opset() ?? LATEST_OPSET;
  const ctx = new InferContext(node, opset, (v) => partialValue(v, walk));
  const results = handler ? handler(ctx) : [];
  node.outputs.forEach((v, i) => {
    if (!v) return;
    const r = results[i];
    if (r?.shape?.some((d) => typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0))) {
      const inputs = node.inputs.map((_, k) => ctx.describe(k)).join(', ');
      throw new GraphError(`${node}: ${inputs} give output "${v.name}" the impossible shape ${formatShape(r.shape)}`);
    }
    if (r?.value) walk.values.set(v, r.value);
    if (r?.elemType !== undefined && v.type?.kind !== 'other') {
      const inferred: TensorType = { kind: 'tensor', elemType: r.elemType, shape: r.shape && [...r.shape] };
      const next = walk.overwrite || !v.type ? inferred : fillIn(v.type, inferred);
      if (!sameType(next, v.type)) {
        v.type = next;
        walk.inferred++;
        if (!listed.has(v) && !v.isGraphOutput) {
          v.graph.valueInfo.push(v);
          listed.add(v);
        }
      }
    }
    if (!v.shape && v.type?.kind !== 'other') walk.unknown.push(v.name);
  });
}

/** Known elements of a value: propagated ones, else a small constant initializer's. */
function partialValue(v: Value, walk: Walk): readonly Dim[] | undefined {
  const known = walk.values.get(v);
  if (known !== undefined) return known ?? undefined;
  // an initializer that is also a graph input (IR ≥ 4) is only a default the caller may override
  const constant = v.initializer && !(v.isGraphInput && walk.model.irVersion >= 4) ? tensorElements(v.initializer) : undefined;
  walk.values.set(v, constant ?? null);
  return constant;
}

/** The stated type with its unknown parts (element type, rank, dims) taken from the inferred one. */
function fillIn(stated: TensorType, inferred: TensorType): TensorType {
  const shape =
    !stated.shape ? inferred.shape
    : inferred.shape && inferred.shape.length === stated.shape.length ? stated.shape.map((d, i) => d ?? inferred.shape![i])
    : stated.shape;
  return { kind: stated.kind, elemType: stated.elemType ?? inferred.elemType, shape };
}

function sameType(a: ValueType, b: ValueType | undefined): boolean {
  if (!b || a.kind !== b.kind || a.kind === 'other' || b.kind === 'other') return a === b;
  if (a.elemType !== b.elemType) return false;
  if (!a.shape || !b.shape) return a.shape === b.shape;
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape![i]);
}

/**
 * The graph's nodes in an order where every node follows the producers of what it reads (the file order where
 * that already holds). The graph itself is not reordered.
 */
function topologicalOrder(g: Graph): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  for (const root of g.nodes) {
    if (seen.has(root)) continue;
    seen.add(root);
    // iterative depth-first search: deep chains must not overflow the stack
    const stack: [Node, Iterator<Value>][] = [[root, nodeReads(root).values()]];
    while (stack.length) {
      const [node, reads] = stack[stack.length - 1];
      const next = reads.next();
      if (next.done) {
        stack.pop();
        order.push(node);
        continue;
      }
      const p = next.value.producer;
      if (p && p.graph === g && !seen.has(p)) {
        seen.add(p);
        stack.push([p, nodeReads(p).values()]);
      }
    }
  }
  return order;
}
