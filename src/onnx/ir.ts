/**
 * The graph IR: models, graphs, nodes and values, with producers and consumers kept consistent by one editing API.
 *
 * The IR knows nothing of protobuf or files (see `proto.ts` for the wire format and `io.ts` for files). Every
 * graph edit goes through the methods here — `Graph.addNode`, `Graph.removeNode`, `Node.setInput`,
 * `Value.replaceAllUsesWith`, `Graph.addInitializer` — so that `value.producer` and `value.uses` never go stale.
 */
import { GraphError, expected, oneOf } from '../errors.js';
import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';

/** One dimension: a fixed size, a symbolic name (`dim_param`, e.g. "batch"), or null when unknown. */
export type Dim = number | string | null;

/** The type of a value. Only tensor types are modelled; others are carried opaquely by the wire layer. */
export interface TensorType {
  readonly kind: 'tensor' | 'sparse_tensor';
  readonly elemType?: DType;
  /** Undefined when the rank is unknown. */
  readonly shape?: readonly Dim[];
}
/** Sequence, map and optional types, which compression passes never edit. */
export interface OtherType {
  readonly kind: 'other';
  /** A short description such as `seq(tensor(float))`, for reports. */
  readonly description: string;
}
export type ValueType = TensorType | OtherType;

/** A node attribute. Integers are JavaScript numbers (ONNX int64; values beyond ±2^53 lose precision only if edited). */
export type Attr =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  /** Sparse tensors and type protos in attributes are kept opaque. */
  | { type: 'sparse_tensor' | 'type_proto' | 'sparse_tensors' | 'type_protos'; value: unknown }
  /** A reference to an attribute of the enclosing function (`ref_attr_name`). */
  | { type: 'ref'; value: string; attrType: string };

/** Constructors for attributes. */
export const attr = {
  float: (value: number): Attr => ({ type: 'float', value }),
  int: (value: number): Attr => ({ type: 'int', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
  tensor: (value: Tensor): Attr => ({ type: 'tensor', value }),
  floats: (value: number[]): Attr => ({ type: 'floats', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  strings: (value: string[]): Attr => ({ type: 'strings', value }),
};

/** A place where a value is read: input `index` of `node`. */
export interface Use {
  readonly node: Node;
  readonly index: number;
}

/**
 * A named value: a graph input, an initializer, or a node output. Knows its producer and every use.
 *
 * @example
 * ```ts
 * const x = graph.value('x');
 * x.producer?.opType; // the node that makes it, if any
 * x.uses.map((u) => u.node.name);
 * ```
 */
export class Value {
  #name: string;
  /** Type and shape, when known (from value_info, graph inputs/outputs, or inference). */
  type?: ValueType;
  /** The node that produces this value (undefined for graph inputs, initializers and outer-scope values). */
  producer?: Node;
  /** The index of this value among its producer's outputs. */
  producerIndex = -1;
  /** Constant data, when this value is an initializer. */
  initializer?: Tensor;
  /** Doc string of its value_info / input / output entry. */
  docString = '';
  readonly #uses: Use[] = [];

  /** @internal made by Graph only */
  constructor(readonly graph: Graph, name: string) {
    this.#name = name;
  }

  get name(): string {
    return this.#name;
  }

  /** Renames the value. Names must stay unique in the graph and its subgraphs. */
  set name(newName: string) {
    if (newName === this.#name) return;
    this.graph.renameValue(this, newName);
    this.#name = newName;
  }

  /** Every place this value is read, in node order of insertion. */
  get uses(): readonly Use[] {
    return this.#uses;
  }

  /** The nodes that read this value (each once). */
  get consumers(): Node[] {
    return [...new Set(this.#uses.map((u) => u.node))];
  }

  get isGraphInput(): boolean {
    return this.graph.inputs.includes(this);
  }

  get isGraphOutput(): boolean {
    return this.graph.outputs.includes(this);
  }

  /** Shape when the type is a tensor type with known rank. */
  get shape(): readonly Dim[] | undefined {
    return this.type && this.type.kind !== 'other' ? this.type.shape : undefined;
  }

  get elemType(): DType | undefined {
    return this.type && this.type.kind !== 'other' ? this.type.elemType : undefined;
  }

  /**
   * Makes every reader of this value read `other` instead. Graph outputs are redirected too when
   * `graphOutputs` is true (the default): then `other` takes this value's name, so the model's
   * output names do not change, unless `other` is itself a graph input or output.
   */
  replaceAllUsesWith(other: Value, { graphOutputs = true }: { graphOutputs?: boolean } = {}): void {
    if (other === this) return;
    for (const use of [...this.#uses]) use.node.setInput(use.index, other);
    if (graphOutputs) {
      const g = this.graph;
      const idx = g.outputs.indexOf(this);
      if (idx >= 0) {
        if (other.graph === g && !other.isGraphInput && !other.isGraphOutput && !other.initializer) {
          const oldName = this.name;
          this.name = g.uniqueName(`${oldName}_replaced`);
          other.name = oldName;
          if (other.type === undefined) other.type = this.type;
          other.docString ||= this.docString;
        }
        for (let i = 0; i < g.outputs.length; i++) if (g.outputs[i] === this) g.outputs[i] = other;
      }
    }
  }

  /** @internal */
  addUse(use: Use): void {
    this.#uses.push(use);
  }

  /** @internal */
  removeUse(node: Node, index: number): void {
    const i = this.#uses.findIndex((u) => u.node === node && u.index === index);
    if (i >= 0) this.#uses.splice(i, 1);
  }

  toString(): string {
    return `value "${this.name}"`;
  }
}

/** What `Graph.addNode` takes. */
export interface NodeSpec {
  opType: string;
  domain?: string;
  name?: string;
  /** Input values; null for an omitted optional input. */
  inputs?: readonly (Value | null)[];
  /** Output names (made unique) or a count (names derived from the node name). Default 1. */
  outputs?: readonly (string | null)[] | number;
  attributes?: Record<string, Attr>;
  docString?: string;
  /** Where to put the node: before or after an existing node (default: at the end). */
  before?: Node;
  after?: Node;
}

/**
 * An operator application. Inputs and outputs are Values; set inputs with `setInput` so uses stay right.
 *
 * @example
 * ```ts
 * const conv = graph.nodes.find((n) => n.opType === 'Conv')!;
 * conv.getInts('strides', [1, 1]);
 * conv.setAttr('group', attr.int(1));
 * ```
 */
export class Node {
  name: string;
  opType: string;
  domain: string;
  overload = '';
  docString = '';
  readonly metadata = new Map<string, string>();
  readonly attributes = new Map<string, Attr>();
  #inputs: (Value | null)[] = [];
  /** Outputs; null marks an omitted optional output. */
  readonly outputs: (Value | null)[] = [];

  /** @internal made by Graph only */
  constructor(
    public graph: Graph,
    opType: string,
    domain: string,
    name: string,
  ) {
    this.opType = opType;
    this.domain = domain;
    this.name = name;
  }

  get inputs(): readonly (Value | null)[] {
    return this.#inputs;
  }

  /** Sets input `index` (appending omitted inputs as needed), keeping uses consistent. */
  setInput(index: number, value: Value | null): void {
    while (this.#inputs.length <= index) this.#inputs.push(null);
    const old = this.#inputs[index];
    if (old === value) return;
    old?.removeUse(this, index);
    this.#inputs[index] = value;
    value?.addUse({ node: this, index });
  }

  /** Replaces the whole input list. */
  setInputs(values: readonly (Value | null)[]): void {
    for (let i = 0; i < this.#inputs.length; i++) this.#inputs[i]?.removeUse(this, i);
    this.#inputs = [];
    values.forEach((v, i) => this.setInput(i, v));
  }

  /** Input `index`, or throws an error naming the node when it is absent. */
  input(index: number): Value {
    const v = this.#inputs[index];
    if (!v) throw new GraphError(`${this} has no input ${index} (it has ${this.#inputs.length})`);
    return v;
  }

  /** Output `index`, or throws an error naming the node when it is absent. */
  output(index = 0): Value {
    const v = this.outputs[index];
    if (!v) throw new GraphError(`${this} has no output ${index}`);
    return v;
  }

  getAttr(name: string): Attr | undefined {
    return this.attributes.get(name);
  }

  setAttr(name: string, value: Attr): void {
    this.attributes.set(name, value);
  }

  getInt(name: string, fallback?: number): number {
    return this.#typed(name, 'int', fallback) as number;
  }

  getFloat(name: string, fallback?: number): number {
    return this.#typed(name, 'float', fallback) as number;
  }

  getString(name: string, fallback?: string): string {
    return this.#typed(name, 'string', fallback) as string;
  }

  getInts(name: string, fallback?: number[]): number[] {
    return this.#typed(name, 'ints', fallback) as number[];
  }

  getFloats(name: string, fallback?: number[]): number[] {
    return this.#typed(name, 'floats', fallback) as number[];
  }

  getTensor(name: string): Tensor | undefined {
    const a = this.attributes.get(name);
    return a?.type === 'tensor' ? a.value : undefined;
  }

  #typed(name: string, type: Attr['type'], fallback: unknown): unknown {
    const a = this.attributes.get(name);
    if (!a) {
      if (fallback === undefined) throw new GraphError(`${this} has no attribute "${name}" ${oneOf(this.attributes.keys())}`);
      return fallback;
    }
    if (a.type !== type) throw new GraphError(expected(`${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type} attribute`, `"${name}" of ${this}`, a.type));
    return a.value;
  }

  /** Subgraphs held in attributes (If branches, Loop and Scan bodies). */
  subgraphs(): Graph[] {
    const out: Graph[] = [];
    for (const a of this.attributes.values()) {
      if (a.type === 'graph') out.push(a.value);
      else if (a.type === 'graphs') out.push(...a.value);
    }
    return out;
  }

  toString(): string {
    return `node "${this.name || '(unnamed)'}" (${this.domain ? this.domain + '.' : ''}${this.opType})`;
  }
}

/**
 * A graph: nodes in order, values by name, inputs, outputs and initializers. Subgraphs have a `parent` node
 * and may read values of enclosing graphs by name.
 *
 * @example
 * ```ts
 * const relu = graph.addNode({ opType: 'Relu', inputs: [graph.value('x')], outputs: ['y'] });
 * graph.outputs.push(relu.output());
 * ```
 */
export class Graph {
  name = '';
  docString = '';
  readonly metadata = new Map<string, string>();
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** Initializers by name, in file order. */
  readonly initializers = new Map<string, Value>();
  /** Values whose type is recorded in value_info, in file order (inference appends to it). */
  readonly valueInfo: Value[] = [];
  /** Sparse initializers, kept opaque (name → wire message). */
  readonly sparseInitializers: { name: string; value: Value; message: unknown }[] = [];
  readonly #values = new Map<string, Value>();
  #nodeCounter = 0;

  /** @param parent the node whose attribute holds this graph, for subgraphs. */
  constructor(
    public parent?: Node,
    public model?: Model,
  ) {}

  /** The outermost graph. */
  get root(): Graph {
    let g: Graph = this;
    while (g.parent) g = g.parent.graph;
    return g;
  }

  /** Values named in this graph (not in enclosing ones). */
  get values(): ReadonlyMap<string, Value> {
    return this.#values;
  }

  /** Finds a value by name in this graph or an enclosing one. */
  lookup(name: string): Value | undefined {
    for (let g: Graph | undefined = this; g; g = g.parent?.graph) {
      const v = g.#values.get(name);
      if (v) return v;
    }
    return undefined;
  }

  /** A value by name; throws an error listing the names that exist when there is none. */
  value(name: string): Value {
    const v = this.lookup(name);
    if (!v) throw new GraphError(`No value named "${name}" in graph "${this.name}" ${oneOf(this.#values.keys())}`);
    return v;
  }

  /** A node by name; throws an error listing the names that exist when there is none. */
  node(name: string): Node {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new GraphError(`No node named "${name}" in graph "${this.name}" ${oneOf(this.nodes.map((x) => x.name))}`);
    return n;
  }

  /** Creates a value with a name unique across the model (the name is suffixed when taken). */
  createValue(name: string, type?: ValueType): Value {
    const v = new Value(this, this.uniqueName(name));
    v.type = type;
    this.#values.set(v.name, v);
    return v;
  }

  /** @internal Creates a value with exactly this name (the loader uses it); fails when the name is taken here. */
  declareValue(name: string): Value {
    if (!name) throw new GraphError(`Empty value names are not allowed in graph "${this.name}"`);
    if (this.#values.has(name)) throw new GraphError(`Value "${name}" is defined twice in graph "${this.name}"`);
    const v = new Value(this, name);
    this.#values.set(name, v);
    return v;
  }

  /** @internal */
  renameValue(v: Value, newName: string): void {
    if (this.lookupDeep(newName)) throw new GraphError(`Cannot rename ${v} to "${newName}": the name is taken`);
    this.#values.delete(v.name);
    this.#values.set(newName, v);
    if (v.initializer && this.initializers.get(v.name) === v) {
      // keep the initializer order: rebuild the map with the new key in place
      const entries = [...this.initializers.entries()].map(([k, val]) => [k === v.name ? newName : k, val] as const);
      this.initializers.clear();
      for (const [k, val] of entries) this.initializers.set(k, val);
    }
  }

  /** Whether a name is used anywhere in the model (this graph, enclosing graphs, and all subgraphs). */
  private lookupDeep(name: string): boolean {
    const visit = (g: Graph): boolean => {
      if (g.#values.has(name)) return true;
      for (const n of g.nodes) for (const s of n.subgraphs()) if (visit(s)) return true;
      return false;
    };
    return visit(this.root);
  }

  /** A name based on `base` that no value in the model uses. */
  uniqueName(base: string): string {
    if (!this.lookupDeep(base)) return base;
    for (let i = 1; ; i++) {
      const candidate = `${base}_${i}`;
      if (!this.lookupDeep(candidate)) return candidate;
    }
  }

  /** A node name based on `base` that no node in this graph uses. */
  uniqueNodeName(base: string): string {
    const names = new Set(this.nodes.map((n) => n.name));
    if (!names.has(base)) return base;
    for (let i = ++this.#nodeCounter; ; i++) if (!names.has(`${base}_${i}`)) return `${base}_${i}`;
  }

  /**
   * Adds a node with fresh output values.
   *
   * @example
   * ```ts
   * const [y] = graph.addNode({ opType: 'Relu', inputs: [x] }).outputs;
   * ```
   */
  addNode(spec: NodeSpec): Node {
    const name = spec.name ?? this.uniqueNodeName(spec.opType);
    const node = new Node(this, spec.opType, spec.domain ?? '', name);
    node.docString = spec.docString ?? '';
    for (const [k, a] of Object.entries(spec.attributes ?? {})) node.attributes.set(k, a);
    (spec.inputs ?? []).forEach((v, i) => node.setInput(i, v));
    const outs = spec.outputs ?? 1;
    const outNames = typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${name || spec.opType}_out${outs > 1 ? i : ''}`) : outs;
    outNames.forEach((n, i) => {
      if (n === null) {
        node.outputs.push(null);
        return;
      }
      const v = this.createValue(n);
      v.producer = node;
      v.producerIndex = i;
      node.outputs.push(v);
    });
    this.#insert(node, spec);
    return node;
  }

  /** @internal Adds a node the loader built; outputs are attached by the caller. */
  appendLoadedNode(node: Node): void {
    this.nodes.push(node);
  }

  #insert(node: Node, where: { before?: Node; after?: Node }): void {
    const anchor = where.before ?? where.after;
    if (!anchor) {
      this.nodes.push(node);
      return;
    }
    const i = this.nodes.indexOf(anchor);
    if (i < 0) throw new GraphError(`Cannot insert ${node} next to ${anchor}: that node is not in graph "${this.name}"`);
    this.nodes.splice(where.before ? i : i + 1, 0, node);
  }

  /**
   * Removes a node. Its outputs must be unused and not graph outputs unless `force` is true (then any
   * remaining readers are left reading a value with no producer, which `validate` reports).
   */
  removeNode(node: Node, { force = false }: { force?: boolean } = {}): void {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new GraphError(`Cannot remove ${node}: it is not in graph "${this.name}"`);
    if (!force) {
      for (const out of node.outputs) {
        if (!out) continue;
        if (out.uses.length) {
          throw new GraphError(`Cannot remove ${node}: its output "${out.name}" is still read by ${out.uses.map((u) => u.node.toString()).join(', ')}`);
        }
        if (out.isGraphOutput) throw new GraphError(`Cannot remove ${node}: its output "${out.name}" is a graph output`);
      }
    }
    node.setInputs([]);
    this.nodes.splice(i, 1);
    for (const out of node.outputs) {
      if (!out) continue;
      out.producer = undefined;
      if (!out.uses.length && !out.isGraphOutput) this.#forget(out);
    }
  }

  /** Adds (or replaces the data of) an initializer. */
  addInitializer(name: string, tensor: Tensor): Value {
    const v = this.createValue(name, { kind: 'tensor', elemType: tensor.dtype, shape: [...tensor.dims] });
    v.initializer = tensor;
    this.initializers.set(v.name, v);
    return v;
  }

  /** Removes an initializer that nothing reads (and its graph-input entry, for models that list one). */
  removeInitializer(v: Value): void {
    if (v.uses.length) throw new GraphError(`Cannot remove initializer "${v.name}": it is read by ${v.uses.map((u) => u.node.toString()).join(', ')}`);
    if (v.isGraphOutput) throw new GraphError(`Cannot remove initializer "${v.name}": it is a graph output`);
    this.initializers.delete(v.name);
    v.initializer = undefined;
    const inputIdx = this.inputs.indexOf(v);
    if (inputIdx >= 0) this.inputs.splice(inputIdx, 1);
    this.#forget(v);
  }

  #forget(v: Value): void {
    if (this.#values.get(v.name) === v && !v.isGraphInput && !v.initializer) {
      this.#values.delete(v.name);
      const vi = this.valueInfo.indexOf(v);
      if (vi >= 0) this.valueInfo.splice(vi, 1);
    }
  }

  /**
   * Sorts nodes topologically, keeping the current order where it is already valid (stable Kahn). Values read
   * from enclosing graphs, and values read inside a node's subgraphs, count as dependencies of the node.
   * Throws a GraphError naming the nodes on a cycle.
   */
  sort(): void {
    const index = new Map(this.nodes.map((n, i) => [n, i]));
    const deps = new Map<Node, Set<Node>>();
    const users = new Map<Node, Node[]>();
    for (const n of this.nodes) {
      const d = new Set<Node>();
      for (const v of nodeReads(n)) {
        const p = v.producer;
        if (p && p.graph === this && p !== n) d.add(p);
      }
      deps.set(n, d);
      for (const p of d) {
        if (!users.has(p)) users.set(p, []);
        users.get(p)!.push(n);
      }
    }
    // a binary heap would be faster; node counts here are small enough for a sorted ready list
    const ready = this.nodes.filter((n) => deps.get(n)!.size === 0);
    const out: Node[] = [];
    const remaining = new Map([...deps].map(([n, d]) => [n, d.size]));
    while (ready.length) {
      ready.sort((a, b) => index.get(a)! - index.get(b)!);
      const n = ready.shift()!;
      out.push(n);
      for (const u of users.get(n) ?? []) {
        const r = remaining.get(u)! - 1;
        remaining.set(u, r);
        if (r === 0) ready.push(u);
      }
    }
    if (out.length !== this.nodes.length) {
      const stuck = this.nodes.filter((n) => !out.includes(n));
      throw new GraphError(`Graph "${this.name}" has a cycle through ${stuck.slice(0, 8).map(String).join(', ')}${stuck.length > 8 ? ', …' : ''}`);
    }
    this.nodes.splice(0, this.nodes.length, ...out);
  }

  /**
   * Checks the graph: every input of every node is a graph input, an initializer, an output of an earlier
   * node, or a value of an enclosing graph; no cycles; graph outputs are produced. Returns the problems found
   * (empty when valid); `validate` throws instead.
   */
  problems(): string[] {
    const found: string[] = [];
    const available = new Set<Value>();
    const addScope = (g: Graph) => {
      for (const v of g.inputs) available.add(v);
      for (const v of g.initializers.values()) available.add(v);
      for (const s of g.sparseInitializers) available.add(s.value);
    };
    // enclosing graphs' values are visible in full (their order relative to this graph is the parent node's)
    for (let p = this.parent; p; p = p.graph.parent) {
      const g = p.graph;
      addScope(g);
      for (const n of g.nodes) for (const o of n.outputs) if (o) available.add(o);
    }
    addScope(this);
    const producedLater = new Set<Value>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) producedLater.add(o);
    for (const n of this.nodes) {
      for (const v of n.inputs) {
        if (!v || available.has(v)) continue;
        if (producedLater.has(v) && v.producer) found.push(`${n} reads "${v.name}" before ${v.producer} produces it (nodes out of order or a cycle)`);
        else found.push(`${n} reads "${v.name}", which no node, input or initializer provides`);
      }
      for (const s of n.subgraphs()) found.push(...s.problemsAsSubgraph(available));
      for (const o of n.outputs) if (o) available.add(o);
    }
    for (const o of this.outputs) if (!available.has(o)) found.push(`Graph output "${o.name}" of graph "${this.name}" is not produced`);
    return found;
  }

  private problemsAsSubgraph(outer: Set<Value>): string[] {
    const visible = new Set(outer);
    for (const v of this.inputs) visible.add(v);
    for (const v of this.initializers.values()) visible.add(v);
    for (const s of this.sparseInitializers) visible.add(s.value);
    const found: string[] = [];
    for (const n of this.nodes) {
      for (const v of n.inputs) if (v && !visible.has(v)) found.push(`${n} in subgraph "${this.name}" reads "${v.name}", which is not available there`);
      for (const s of n.subgraphs()) found.push(...s.problemsAsSubgraph(visible));
      for (const o of n.outputs) if (o) visible.add(o);
    }
    for (const o of this.outputs) if (!visible.has(o)) found.push(`Output "${o.name}" of subgraph "${this.name}" is not produced`);
    return found;
  }

  /** Throws a GraphError listing the problems, if any. */
  validate(): void {
    const p = this.problems();
    if (p.length) throw new GraphError(`Invalid graph "${this.name}": ${p.slice(0, 10).join('; ')}${p.length > 10 ? `; and ${p.length - 10} more` : ''}`);
  }

  /** Every node of this graph and of its subgraphs, depth first. */
  *allNodes(): Generator<Node> {
    for (const n of this.nodes) {
      yield n;
      for (const s of n.subgraphs()) yield* s.allNodes();
    }
  }
}

/** Values a node reads, including values its subgraphs read from outside themselves. */
export function nodeReads(n: Node): Set<Value> {
  const out = new Set<Value>();
  for (const v of n.inputs) if (v) out.add(v);
  for (const s of n.subgraphs()) {
    for (const inner of s.allNodes()) {
      for (const v of nodeReadsShallow(inner)) if (!isInside(v.graph, s)) out.add(v);
    }
    for (const o of s.outputs) if (!isInside(o.graph, s)) out.add(o);
  }
  return out;
}

function nodeReadsShallow(n: Node): Value[] {
  return n.inputs.filter((v): v is Value => v !== null);
}

function isInside(g: Graph, scope: Graph): boolean {
  for (let x: Graph | undefined = g; x; x = x.parent?.graph) if (x === scope) return true;
  return false;
}

/** A model-local function (FunctionProto). Its body is a Graph whose inputs and outputs are untyped. */
export interface OnnxFunction {
  name: string;
  domain: string;
  overload: string;
  /** Formal attribute names, and attributes with default values. */
  attributeNames: string[];
  attributeDefaults: Map<string, Attr>;
  opsetImports: Map<string, number>;
  docString: string;
  metadata: Map<string, string>;
  body: Graph;
}

/**
 * A model: opset imports, metadata, the main graph and local functions.
 *
 * @example
 * ```ts
 * const model = await loadModel('model.onnx');
 * model.opset(); // default-domain opset version, e.g. 13
 * model.graph.nodes.length;
 * ```
 */
export class Model {
  irVersion = 10;
  /** domain ('' = ai.onnx) → version. */
  readonly opsetImports = new Map<string, number>();
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion = 0;
  docString = '';
  readonly metadata = new Map<string, string>();
  readonly functions: OnnxFunction[] = [];
  graph: Graph;

  constructor() {
    this.graph = new Graph(undefined, this);
  }

  /** The opset version imported for a domain ('' and 'ai.onnx' are the same), or undefined. */
  opset(domain = ''): number | undefined {
    return this.opsetImports.get(domain) ?? (domain === '' ? this.opsetImports.get('ai.onnx') : undefined);
  }
}
