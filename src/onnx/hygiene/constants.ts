/**
 * What the hygiene passes share: which values are constant (initializers that no caller can override, and outputs
 * of `Constant` nodes), the tensor a `Constant` node holds, and swapping a value for a new initializer or dropping
 * constants that nothing reads any more — all through the IR's editing API.
 */
import { PassError } from '../../errors.js';
import type { DType } from '../dtype.js';
import type { Graph, Model, Node, Value } from '../ir.js';
import { Tensor } from '../tensor.js';

/** The default ONNX domain, under either of its names. */
export function isOnnxDomain(node: Node): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** The IR version of the model a graph belongs to (the root graph knows its model). */
export function irVersionOf(g: Graph): number {
  return g.root.model?.irVersion ?? 10;
}

/**
 * Whether an initializer is constant: from IR version 4 on, an initializer that is also listed as a graph input
 * is only a default that the caller may override, so it is not constant. Before IR version 4 every initializer
 * had to be listed as an input, and runtimes treat them as constants.
 */
export function isConstantInitializer(v: Value): boolean {
  if (!v.initializer) return false;
  return !v.isGraphInput || irVersionOf(v.graph) < 4;
}

/**
 * The tensor a `Constant` node holds, from whichever of its attributes is set (`value`, `value_float(s)`,
 * `value_int(s)`, `value_string(s)`); undefined for `sparse_value` (kept sparse: densifying it could be large)
 * and for attributes that refer to an enclosing function's attributes. Throws a PassError naming the node when
 * it has none of them.
 */
export function constantNodeTensor(node: Node): Tensor | undefined {
  for (const [name, a] of node.attributes) {
    switch (name) {
      case 'value':
        if (a.type === 'tensor') return a.value;
        break;
      case 'value_float':
        if (a.type === 'float') return Tensor.from('float32', [], [a.value]);
        break;
      case 'value_floats':
        if (a.type === 'floats') return Tensor.from('float32', [a.value.length], a.value);
        break;
      case 'value_int':
        if (a.type === 'int') return Tensor.from('int64', [], [BigInt(a.value)]);
        break;
      case 'value_ints':
        if (a.type === 'ints') return Tensor.from('int64', [a.value.length], a.value.map((x) => BigInt(x)));
        break;
      case 'value_string':
        if (a.type === 'string') return Tensor.fromStrings([], [a.value]);
        break;
      case 'value_strings':
        if (a.type === 'strings') return Tensor.fromStrings([a.value.length], a.value);
        break;
      case 'sparse_value':
        return undefined;
    }
    if (a.type === 'ref') return undefined;
  }
  throw new PassError(`${node} has no value attribute (expected one of value, value_float(s), value_int(s), value_string(s), sparse_value; found ${[...node.attributes.keys()].join(', ') || 'none'})`);
}

/** The constant data of a value: a non-overridable initializer, or the output of a `Constant` node; else undefined. */
export function constantOf(v: Value | null | undefined): Tensor | undefined {
  if (!v) return undefined;
  if (v.initializer) return isConstantInitializer(v) ? v.initializer : undefined;
  const p = v.producer;
  if (p && p.opType === 'Constant' && isOnnxDomain(p) && p.outputs.length === 1) return constantNodeTensor(p);
  return undefined;
}

/**
 * Adds an initializer holding `tensor` in `g`, named after `baseName` (suffixed when taken). Models before IR
 * version 4 must also list every initializer as a graph input, so there it is listed too.
 */
export function addConstant(g: Graph, baseName: string, tensor: Tensor): Value {
  const v = g.addInitializer(baseName, tensor);
  if (irVersionOf(g) < 4 && !g.parent) g.inputs.push(v);
  return v;
}

/**
 * Makes every reader of `v` read a new initializer holding `tensor` instead (graph outputs keep reading `v`).
 * Returns the initializer; call `adoptName` once `v` is gone to give it `v`'s name back.
 */
export function replaceByConstant(v: Value, tensor: Tensor): Value {
  const init = addConstant(v.graph, `${v.name}_const`, tensor);
  v.replaceAllUsesWith(init, { graphOutputs: false });
  return init;
}

/** Renames `v` to `name` when no value in the model holds that name any more (keeps weight names stable). */
export function adoptName(v: Value, name: string): void {
  if (v.name !== name && v.graph.uniqueName(name) === name) v.name = name;
}

/**
 * Removes the constants in `values` that nothing reads any more: unread initializers (not graph inputs from IR
 * version 4 on, which are the model's interface) and `Constant` nodes whose output is unread. Returns how many
 * were removed.
 */
export function dropUnreadConstants(values: Iterable<Value | null | undefined>): number {
  let removed = 0;
  for (const v of new Set(values)) {
    if (!v || v.uses.length || v.isGraphOutput) continue;
    if (v.initializer && v.graph.initializers.get(v.name) === v) {
      if (v.isGraphInput && irVersionOf(v.graph) >= 4) continue;
      v.graph.removeInitializer(v);
      removed++;
    } else if (v.producer?.opType === 'Constant' && v.producer.outputs.every((o) => !o || (!o.uses.length && !o.isGraphOutput))) {
      v.producer.graph.removeNode(v.producer);
      removed++;
    }
  }
  return removed;
}

/** The opset of the default domain, or `fallback`. */
export function opsetOf(model: Model, fallback = 1): number {
  return model.opset('') ?? fallback;
}

/** Float dtypes the folding passes can read and write (the 16-bit ones through codecs). */
export const FOLDABLE_FLOAT_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];
