/**
 * The wire layer: ONNX protobuf messages (the ONNX 1.20 schema compiled by Buf's protoc-gen-es, package
 * `onnx-buf`) to and from the IR.
 *
 * Lossless by construction: every IR object remembers the message it was decoded from (in WeakMaps, so the IR
 * stays free of protobuf), and encoding starts from a shallow copy of that message, so fields the IR does not
 * model — doc strings of attributes, quantization annotations, training info, device configurations, fields
 * from a newer ONNX that this schema does not know (kept by @bufbuild/protobuf as unknown fields) — are written
 * back as they were. Scalar fields are overwritten only when the IR's value differs, because proto2 records
 * presence: an absent field and a field set to its default serialize differently.
 */
import { fromBinary, toBinary, create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AT,
  FunctionProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  SparseTensorProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  TypeProto_SparseTensorSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type StringStringEntryProto,
  type TensorProto,
  type TypeProto,
  type ValueInfoProto,
} from 'onnx-buf';
import { GraphError, LoadError, OnnxpressError } from '../errors.js';
import { DTYPES, byteLength, dtypeCode, dtypeFromCode, elementCount, type DType } from './dtype.js';
import { Graph, Model, Node, type Attr, type Dim, type OnnxFunction, type Value, type ValueType } from './ir.js';
import { Tensor } from './tensor.js';

export type { ModelProto, SparseTensorProto, TensorProto };
export { ModelProtoSchema, TensorProtoSchema, TensorProto_DataLocation };

// ---------------------------------------------------------------------------------------------------------------
// Where each IR object came from. WeakMaps keep the IR free of protobuf types.
const modelSrc = new WeakMap<Model, ModelProto>();
const graphSrc = new WeakMap<Graph, GraphProto>();
const nodeSrc = new WeakMap<Node, NodeProto>();
const attrSrc = new WeakMap<object, AttributeProto>();
const tensorSrc = new WeakMap<Tensor, TensorProto>();
const typeSrc = new WeakMap<object, TypeProto>();
const funcSrc = new WeakMap<OnnxFunction, FunctionProto>();
type Role = 'input' | 'output' | 'valueInfo';
const valueSrc = new WeakMap<Value, Partial<Record<Role, ValueInfoProto>>>();
/** Each value's type object right after loading, to tell whether a pass changed it. */
const typeAtLoad = new WeakMap<Value, ValueType | undefined>();

/** The TensorProto a tensor was decoded from, if it is unchanged since loading (the I/O layer reads external data through it). */
export function tensorSource(t: Tensor): TensorProto | undefined {
  return tensorSrc.get(t);
}

/** Options for decoding. */
export interface DecodeOptions {
  /** Reads the bytes of a tensor stored as external data; without it such tensors are an error. */
  readExternal?: (tensor: TensorProto) => Uint8Array;
  /** Named in error messages. */
  source?: string;
}

/**
 * Parses ONNX protobuf bytes into a ModelProto. Truncated, hostile or random bytes give a LoadError.
 *
 * @example
 * ```ts
 * const proto = decodeModelProto(bytes, 'model.onnx');
 * ```
 */
export function decodeModelProto(bytes: Uint8Array, source = 'model'): ModelProto {
  if (bytes.byteLength === 0) throw new LoadError(`${source}: the file is empty, not an ONNX model`);
  try {
    return fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (e) {
    const why = e instanceof RangeError && /call stack/i.test(e.message) ? 'messages nested too deeply' : (e as Error).message;
    throw new LoadError(`${source}: not a valid ONNX model: malformed or truncated protobuf (${why})`, { cause: e });
  }
}

/**
 * Builds the IR for a ModelProto.
 *
 * @example
 * ```ts
 * const model = modelFromProto(decodeModelProto(bytes));
 * ```
 */
export function modelFromProto(proto: ModelProto, options: DecodeOptions = {}): Model {
  const source = options.source ?? 'model';
  const m = new Model();
  modelSrc.set(m, proto);
  m.irVersion = Number(proto.irVersion);
  for (const o of proto.opsetImport) m.opsetImports.set(o.domain, Number(o.version));
  m.producerName = proto.producerName;
  m.producerVersion = proto.producerVersion;
  m.domain = proto.domain;
  m.modelVersion = Number(proto.modelVersion);
  m.docString = proto.docString;
  readMetadata(m.metadata, proto.metadataProps);
  if (!proto.graph) throw new LoadError(`${source}: the model has no graph`);
  const ctx: DecodeCtx = { source, readExternal: options.readExternal };
  decodeGraph(proto.graph, m.graph, ctx);
  for (const f of proto.functions) m.functions.push(decodeFunction(f, m, ctx));
  return m;
}

interface DecodeCtx {
  source: string;
  readExternal?: (tensor: TensorProto) => Uint8Array;
}

function readMetadata(target: Map<string, string>, props: StringStringEntryProto[]): void {
  for (const p of props) target.set(p.key, p.value);
}

function decodeGraph(gp: GraphProto, g: Graph, ctx: DecodeCtx): void {
  graphSrc.set(g, gp);
  g.name = gp.name;
  g.docString = gp.docString;
  readMetadata(g.metadata, gp.metadataProps);
  const where = `${ctx.source}: graph "${gp.name}"`;
  for (const tp of gp.initializer) {
    if (!tp.name) throw new LoadError(`${where} has an initializer with no name`);
    if (g.values.has(tp.name)) throw new LoadError(`${where} defines initializer "${tp.name}" twice`);
    const v = g.declareValue(tp.name);
    v.initializer = decodeTensor(tp, ctx);
    g.initializers.set(tp.name, v);
  }
  for (const sp of gp.sparseInitializer) {
    const name = sp.values?.name ?? '';
    if (!name || g.values.has(name)) throw new LoadError(`${where} has a sparse initializer with a missing or duplicate name "${name}"`);
    g.sparseInitializers.push({ name, value: g.declareValue(name), message: sp });
  }
  const inputNames = new Set<string>();
  for (const vi of gp.input) {
    // onnx's checker and onnxruntime refuse a repeated input name; accepting it would feed one value twice
    if (inputNames.has(vi.name)) throw new LoadError(`${where} lists graph input "${vi.name}" twice`);
    inputNames.add(vi.name);
    const v = g.values.get(vi.name) ?? declare(g, vi.name, where);
    g.inputs.push(v);
    attachValueInfo(v, vi, 'input');
  }
  // declare every node output first: files are supposed to be in topological order, but a forward reference
  // should surface as a validation problem that names the nodes, not as "unknown value"
  const nodes: Node[] = [];
  for (const np of gp.node) {
    const n = new Node(g, np.opType, np.domain, np.name);
    nodeSrc.set(n, np);
    n.overload = np.overload;
    n.docString = np.docString;
    readMetadata(n.metadata, np.metadataProps);
    np.output.forEach((name, i) => {
      if (!name) {
        n.outputs.push(null);
        return;
      }
      if (g.values.has(name)) throw new LoadError(`${where}: ${n} outputs "${name}", which is already defined`);
      const v = g.declareValue(name);
      v.producer = n;
      v.producerIndex = i;
      n.outputs.push(v);
    });
    g.appendLoadedNode(n);
    nodes.push(n);
  }
  gp.node.forEach((np, k) => {
    const n = nodes[k];
    np.input.forEach((name, i) => {
      if (!name) {
        n.setInput(i, null);
        return;
      }
      const v = g.lookup(name);
      if (!v) throw new LoadError(`${where}: ${n} reads "${name}", which no node, graph input or initializer provides (a dangling input)`);
      n.setInput(i, v);
    });
    for (const ap of np.attribute) {
      if (n.attributes.has(ap.name)) throw new LoadError(`${where}: ${n} has attribute "${ap.name}" twice`);
      n.attributes.set(ap.name, decodeAttr(ap, n, ctx));
    }
  });
  for (const vi of gp.output) {
    const v = g.lookup(vi.name);
    if (!v) throw new LoadError(`${where}: graph output "${vi.name}" is not produced by any node, input or initializer`);
    g.outputs.push(v);
    if (v.graph === g) attachValueInfo(v, vi, 'output');
    else rememberRole(v, vi, 'output'); // an outer value passed straight through a subgraph
  }
  for (const vi of gp.valueInfo) {
    // value_info may describe a value no node produces (stale entries are common): keep it so nothing is lost
    const v = g.values.get(vi.name) ?? declare(g, vi.name, where);
    g.valueInfo.push(v);
    attachValueInfo(v, vi, 'valueInfo');
  }
  for (const v of g.values.values()) typeAtLoad.set(v, v.type);
}

function declare(g: Graph, name: string, where: string): Value {
  if (!name) throw new LoadError(`${where} has a value with an empty name`);
  return g.declareValue(name);
}

function rememberRole(v: Value, vi: ValueInfoProto, role: Role): void {
  const rec = valueSrc.get(v) ?? {};
  rec[role] = vi;
  valueSrc.set(v, rec);
}

function attachValueInfo(v: Value, vi: ValueInfoProto, role: Role): void {
  rememberRole(v, vi, role);
  if (vi.type && v.type === undefined) v.type = decodeType(vi.type);
  if (vi.docString && !v.docString) v.docString = vi.docString;
}

function decodeType(tp: TypeProto): ValueType {
  let t: ValueType;
  const c = tp.value;
  if (c.case === 'tensorType' || c.case === 'sparseTensorType') {
    const elemType = dtypeFromCode(c.value.elemType);
    const shape = c.value.shape ? c.value.shape.dim.map((d): Dim => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : null)) : undefined;
    t = { kind: c.case === 'tensorType' ? 'tensor' : 'sparse_tensor', elemType, shape };
  } else {
    t = { kind: 'other', description: describeType(tp) };
  }
  typeSrc.set(t, tp);
  return t;
}

function describeType(tp: TypeProto): string {
  const c = tp.value;
  switch (c.case) {
    case 'tensorType':
      return `tensor(${dtypeFromCode(c.value.elemType) ?? '?'})`;
    case 'sparseTensorType':
      return `sparse_tensor(${dtypeFromCode(c.value.elemType) ?? '?'})`;
    case 'sequenceType':
      return `seq(${c.value.elemType ? describeType(c.value.elemType) : '?'})`;
    case 'optionalType':
      return `optional(${c.value.elemType ? describeType(c.value.elemType) : '?'})`;
    case 'mapType':
      return `map(${dtypeFromCode(c.value.keyType) ?? '?'}, ${c.value.valueType ? describeType(c.value.valueType) : '?'})`;
    default:
      return 'unknown';
  }
}

/** Decodes a TensorProto's data into a Tensor (raw_data stays a view of the file bytes). */
export function decodeTensor(tp: TensorProto, ctx: DecodeCtx): Tensor {
  const what = `${ctx.source}: tensor "${tp.name}"`;
  const dtype = dtypeFromCode(tp.dataType);
  if (!dtype) throw new LoadError(`${what} has unknown data type ${tp.dataType}`);
  const dims = tp.dims.map((d) => {
    const n = Number(d);
    if (d < 0n || !Number.isSafeInteger(n)) throw new LoadError(`${what} has an invalid dimension ${d}`);
    return n;
  });
  const count = elementCount(dims);
  if (!Number.isSafeInteger(count)) throw new LoadError(`${what} has dims ${tp.dims.join('x')}, too many elements`);
  let t: Tensor;
  try {
    if (tp.dataLocation === TensorProto_DataLocation.EXTERNAL) {
      if (!ctx.readExternal) throw new LoadError(`${what} is stored as external data, which needs the model's folder: load the model from a file, or pass baseDir`);
      t = Tensor.fromBytes(dtype, dims, ctx.readExternal(tp));
    } else if (dtype === 'string') {
      if (tp.stringData.length !== count) throw new LoadError(`${what} has ${tp.stringData.length} strings for dims [${dims}]`);
      t = Tensor.fromStrings(dims, tp.stringData);
    } else if (tp.rawData.byteLength > 0 || Object.hasOwn(tp, 'rawData')) {
      const want = byteLength(dtype, count);
      if (tp.rawData.byteLength !== want) throw new LoadError(`${what} (${dtype} [${dims}]) needs ${want} bytes of raw_data but has ${tp.rawData.byteLength}`);
      t = Tensor.fromBytes(dtype, dims, tp.rawData);
    } else {
      t = fromTypedFields(tp, dtype, dims, count, what);
    }
  } catch (e) {
    if (e instanceof LoadError) throw e;
    throw new LoadError(`${what}: ${(e as Error).message}`, { cause: e });
  }
  tensorSrc.set(t, tp);
  return t;
}

function fromTypedFields(tp: TensorProto, dtype: DType, dims: number[], count: number, what: string): Tensor {
  const info = DTYPES[dtype];
  const complex = dtype === 'complex64' || dtype === 'complex128';
  const want = info.bits < 8 ? byteLength(dtype, count) : count * (complex ? 2 : 1);
  const field = tp[info.field] as ArrayLike<number | bigint>;
  if (field.length !== want) {
    throw new LoadError(`${what} (${dtype} [${dims}]) needs ${want} values in ${snake(info.field)} but has ${field.length}`);
  }
  const arr = new info.array!(want);
  if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) {
    for (let i = 0; i < want; i++) arr[i] = BigInt(field[i]);
  } else if (dtype === 'uint32') {
    // uint32 lives in uint64_data
    for (let i = 0; i < want; i++) (arr as Uint32Array)[i] = Number(field[i]);
  } else {
    // int32_data holds one element per entry (16-bit floats as their bits, 4-bit types as packed bytes)
    for (let i = 0; i < want; i++) (arr as Float32Array)[i] = Number(field[i]);
  }
  return Tensor.from(dtype, dims, arr);
}

function snake(s: string): string {
  return s.replace(/[A-Z0-9]+/g, (c) => '_' + c.toLowerCase());
}

function decodeAttr(ap: AttributeProto, n: Node, ctx: DecodeCtx): Attr {
  let a: Attr;
  const type = ap.type || inferAttrType(ap);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (ap.refAttrName) {
    a = { type: 'ref', value: ap.refAttrName, attrType: AT[type] ?? String(type) };
  } else {
    switch (type) {
      case AT.FLOAT: a = { type: 'float', value: ap.f }; break;
      case AT.INT: a = { type: 'int', value: Number(ap.i) }; break;
      case AT.STRING: a = { type: 'string', value: text(ap.s) }; break;
      case AT.TENSOR:
        if (!ap.t) throw new LoadError(`${ctx.source}: attribute "${ap.name}" of ${n} is a tensor attribute with no tensor`);
        a = { type: 'tensor', value: decodeTensor(ap.t, ctx) };
        break;
      case AT.GRAPH: {
        if (!ap.g) throw new LoadError(`${ctx.source}: attribute "${ap.name}" of ${n} is a graph attribute with no graph`);
        const sub = new Graph(n);
        decodeGraph(ap.g, sub, ctx);
        a = { type: 'graph', value: sub };
        break;
      }
      case AT.FLOATS: a = { type: 'floats', value: [...ap.floats] }; break;
      case AT.INTS: a = { type: 'ints', value: ap.ints.map(Number) }; break;
      case AT.STRINGS: a = { type: 'strings', value: ap.strings.map(text) }; break;
      case AT.TENSORS: a = { type: 'tensors', value: ap.tensors.map((t) => decodeTensor(t, ctx)) }; break;
      case AT.GRAPHS:
        a = {
          type: 'graphs',
          value: ap.graphs.map((gp) => {
            const sub = new Graph(n);
            decodeGraph(gp, sub, ctx);
            return sub;
          }),
        };
        break;
      case AT.SPARSE_TENSOR: a = { type: 'sparse_tensor', value: ap.sparseTensor }; break;
      case AT.SPARSE_TENSORS: a = { type: 'sparse_tensors', value: ap.sparseTensors }; break;
      case AT.TYPE_PROTO: a = { type: 'type_proto', value: ap.tp }; break;
      case AT.TYPE_PROTOS: a = { type: 'type_protos', value: ap.typeProtos }; break;
      default:
        throw new LoadError(`${ctx.source}: attribute "${ap.name}" of ${n} has unknown type ${ap.type}`);
    }
  }
  attrSrc.set(a, ap);
  return a;
}

/** IR version 1 files may leave `type` unset: infer it from the field that is present. */
function inferAttrType(ap: AttributeProto): AT {
  if (ap.floats.length) return AT.FLOATS;
  if (ap.ints.length) return AT.INTS;
  if (ap.strings.length) return AT.STRINGS;
  if (ap.tensors.length) return AT.TENSORS;
  if (ap.graphs.length) return AT.GRAPHS;
  if (ap.t) return AT.TENSOR;
  if (ap.g) return AT.GRAPH;
  if (Object.hasOwn(ap, 's')) return AT.STRING;
  if (Object.hasOwn(ap, 'i')) return AT.INT;
  if (Object.hasOwn(ap, 'f')) return AT.FLOAT;
  return AT.UNDEFINED;
}

function decodeFunction(fp: FunctionProto, m: Model, ctx: DecodeCtx): OnnxFunction {
  const body = new Graph(undefined, m);
  const where = `${ctx.source}: function "${fp.domain}.${fp.name}"`;
  // a function body is a graph whose inputs and outputs are untyped names; decode it through the same path
  const gp = create(GraphProtoSchema, {
    name: fp.name,
    node: fp.node,
    input: fp.input.map((name) => create(ValueInfoProtoSchema, { name })),
    output: fp.output.map((name) => create(ValueInfoProtoSchema, { name })),
    valueInfo: fp.valueInfo,
  });
  try {
    decodeGraph(gp, body, { ...ctx, source: where });
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    throw new LoadError(`${where}: ${(e as Error).message}`, { cause: e });
  }
  const attributeDefaults = new Map<string, Attr>();
  const fake = new Node(body, 'Function', fp.domain, fp.name);
  for (const ap of fp.attributeProto) attributeDefaults.set(ap.name, decodeAttr(ap, fake, ctx));
  const f: OnnxFunction = {
    name: fp.name,
    domain: fp.domain,
    overload: fp.overload,
    attributeNames: [...fp.attribute],
    attributeDefaults,
    opsetImports: new Map(fp.opsetImport.map((o) => [o.domain, Number(o.version)])),
    docString: fp.docString,
    metadata: new Map(fp.metadataProps.map((p) => [p.key, p.value])),
    body,
  };
  funcSrc.set(f, fp);
  return f;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/** Options for encoding. */
export interface EncodeOptions {
  /**
   * Called for every tensor being written (initializers and tensor attributes). Returns the TensorProto to
   * write; the I/O layer uses it to move large tensors to external data.
   */
  placeTensor?: (tensor: Tensor, proto: TensorProto) => TensorProto;
}

/** A shallow copy of a message that keeps field presence (own properties) and unknown fields. */
function copyOf<T extends object>(msg: T): T {
  return Object.assign(Object.create(Object.getPrototypeOf(msg)), msg) as T;
}

function fresh<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> {
  return create(schema) as MessageShape<Desc>;
}

/** Sets a proto2 scalar only when it differs, so that unchanged fields keep their presence. */
function setScalar<T extends object, K extends keyof T>(msg: T, key: K, value: T[K], dflt: T[K]): void {
  if (msg[key] === value) {
    // equal to what is there (possibly the prototype's default, i.e. absent): keep presence as it is
    return;
  }
  if (value === dflt) delete msg[key];
  else msg[key] = value;
}

function writeMetadata(target: StringStringEntryProto[], source: Map<string, string>): StringStringEntryProto[] {
  const same = target.length === source.size && target.every((p) => source.get(p.key) === p.value);
  if (same) return target;
  return [...source].map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
}

/**
 * Builds the ModelProto for a model.
 *
 * @example
 * ```ts
 * const bytes = toBinary(ModelProtoSchema, modelToProto(model));
 * ```
 */
export function modelToProto(m: Model, options: EncodeOptions = {}): ModelProto {
  const src = modelSrc.get(m);
  const out = src ? copyOf(src) : fresh(ModelProtoSchema);
  setScalar(out, 'irVersion', BigInt(m.irVersion) === out.irVersion ? out.irVersion : BigInt(m.irVersion), 0n);
  setScalar(out, 'producerName', m.producerName, '');
  setScalar(out, 'producerVersion', m.producerVersion, '');
  setScalar(out, 'domain', m.domain, '');
  setScalar(out, 'modelVersion', BigInt(m.modelVersion) === out.modelVersion ? out.modelVersion : BigInt(m.modelVersion), 0n);
  setScalar(out, 'docString', m.docString, '');
  out.metadataProps = writeMetadata(out.metadataProps, m.metadata);
  out.opsetImport = encodeOpsets(src?.opsetImport ?? [], m.opsetImports);
  out.graph = encodeGraph(m.graph, options);
  out.functions = m.functions.map((f) => encodeFunction(f, options));
  return out;
}

function encodeOpsets(src: ModelProto['opsetImport'], opsets: Map<string, number>): ModelProto['opsetImport'] {
  const same = src.length === opsets.size && src.every((o) => opsets.get(o.domain) === Number(o.version));
  if (same) return src;
  return [...opsets].map(([domain, version]) => create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
}

function encodeGraph(g: Graph, options: EncodeOptions): GraphProto {
  const src = graphSrc.get(g);
  const out = src ? copyOf(src) : fresh(GraphProtoSchema);
  setScalar(out, 'name', g.name, '');
  setScalar(out, 'docString', g.docString, '');
  out.metadataProps = writeMetadata(out.metadataProps, g.metadata);
  out.initializer = [...g.initializers.values()].filter((v) => v.initializer).map((v) => encodeTensor(v.initializer!, v.name, options));
  out.sparseInitializer = g.sparseInitializers.filter((s) => s.value.graph.values.get(s.value.name) === s.value).map((s) => s.message as GraphProto['sparseInitializer'][number]);
  out.input = g.inputs.map((v) => encodeValueInfo(v, 'input'));
  out.output = g.outputs.map((v) => encodeValueInfo(v, 'output'));
  out.valueInfo = g.valueInfo.filter((v) => g.values.get(v.name) === v).map((v) => encodeValueInfo(v, 'valueInfo'));
  out.node = g.nodes.map((n) => encodeNode(n, options));
  return out;
}

function encodeValueInfo(v: Value, role: Role): ValueInfoProto {
  const src = valueSrc.get(v)?.[role];
  const out = src ? copyOf(src) : fresh(ValueInfoProtoSchema);
  setScalar(out, 'name', v.name, '');
  setScalar(out, 'docString', v.docString, '');
  // an unchanged type keeps this entry's own type message (an input and its value_info entry may differ)
  if (src && typeAtLoad.has(v) && typeAtLoad.get(v) === v.type) return out;
  if (v.type === undefined) delete (out as Partial<ValueInfoProto>).type;
  else out.type = encodeType(v.type);
  return out;
}

function encodeType(t: ValueType): TypeProto {
  const src = typeSrc.get(t);
  if (src) return src;
  if (t.kind === 'other') throw new GraphError(`Cannot write a value type "${t.description}" that was not read from a file`);
  const shape = t.shape
    ? create(TensorShapeProtoSchema, {
        dim: t.shape.map((d) =>
          create(TensorShapeProto_DimensionSchema, {
            value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : typeof d === 'string' ? { case: 'dimParam', value: d } : { case: undefined },
          }),
        ),
      })
    : undefined;
  const elemType = t.elemType ? dtypeCode(t.elemType) : 0;
  if (t.kind === 'tensor') {
    return create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType, shape }) } });
  }
  return create(TypeProtoSchema, { value: { case: 'sparseTensorType', value: create(TypeProto_SparseTensorSchema, { elemType, shape }) } });
}

function encodeNode(n: Node, options: EncodeOptions): NodeProto {
  const src = nodeSrc.get(n);
  const out = src ? copyOf(src) : fresh(NodeProtoSchema);
  setScalar(out, 'name', n.name, '');
  setScalar(out, 'opType', n.opType, '');
  setScalar(out, 'domain', n.domain, '');
  setScalar(out, 'overload', n.overload, '');
  setScalar(out, 'docString', n.docString, '');
  out.metadataProps = writeMetadata(out.metadataProps, n.metadata);
  const inputs = n.inputs.map((v) => v?.name ?? '');
  // trailing omitted inputs are dropped, as ONNX writers do (but kept when the file had them)
  while (inputs.length && inputs[inputs.length - 1] === '' && !(src && src.input.length >= inputs.length)) inputs.pop();
  out.input = inputs;
  out.output = n.outputs.map((v) => v?.name ?? '');
  out.attribute = [...n.attributes].map(([name, a]) => encodeAttr(name, a, options, ` of ${n}`));
  return out;
}

function encodeAttr(name: string, a: Attr, options: EncodeOptions, owner = ''): AttributeProto {
  const src = attrSrc.get(a);
  const out = src ? copyOf(src) : fresh(AttributeProtoSchema);
  setScalar(out, 'name', name, '');
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const setType = (t: AT) => {
    // IR version 1 files leave type unset; keep it unset when it was and still agrees
    if (!(src && !Object.hasOwn(src, 'type') && inferAttrType(src) === t)) setScalar(out, 'type', t, AT.UNDEFINED);
  };
  switch (a.type) {
    case 'ref':
      setScalar(out, 'refAttrName', a.value, '');
      return out;
    case 'float':
      setType(AT.FLOAT);
      setScalar(out, 'f', Math.fround(a.value) === out.f ? out.f : a.value, 0);
      break;
    case 'int':
      setType(AT.INT);
      if (Number(out.i) !== a.value || !Object.hasOwn(out, 'i')) setScalar(out, 'i', toInt64(a.value, `attribute "${name}"${owner}`), 0n);
      break;
    case 'string':
      setType(AT.STRING);
      if (!(src && dec.decode(src.s) === a.value && Object.hasOwn(src, 's'))) out.s = enc.encode(a.value);
      break;
    case 'tensor':
      setType(AT.TENSOR);
      out.t = encodeTensor(a.value, src?.t?.name ?? '', options);
      break;
    case 'graph':
      setType(AT.GRAPH);
      out.g = encodeGraph(a.value, options);
      break;
    case 'floats':
      setType(AT.FLOATS);
      if (!(src && sameNumbers(src.floats, a.value.map(Math.fround)))) out.floats = [...a.value];
      break;
    case 'ints':
      setType(AT.INTS);
      if (!(src && sameNumbers(src.ints.map(Number), a.value))) out.ints = a.value.map((v) => toInt64(v, `attribute "${name}"${owner}`));
      break;
    case 'strings':
      setType(AT.STRINGS);
      if (!(src && sameNumbers(src.strings.map((s) => dec.decode(s)), a.value))) out.strings = a.value.map((s) => enc.encode(s));
      break;
    case 'tensors':
      setType(AT.TENSORS);
      out.tensors = a.value.map((t, i) => encodeTensor(t, src?.tensors[i]?.name ?? '', options));
      break;
    case 'graphs':
      setType(AT.GRAPHS);
      out.graphs = a.value.map((g) => encodeGraph(g, options));
      break;
    default:
      // opaque kinds are written as they were read
      if (!src) throw new GraphError(`Cannot write attribute "${name}" of type ${a.type} that was not read from a file`);
  }
  return out;
}

function sameNumbers<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Clamps to int64 (attributes such as Slice's ends use INT64_MAX, which a double rounds past). */
function toInt64(v: number, what: string): bigint {
  if (Number.isNaN(v)) throw new GraphError(`Cannot write ${what}: NaN is not an int64`);
  if (v >= 9223372036854775807) return 9223372036854775807n;
  if (v <= -9223372036854775808) return -9223372036854775808n;
  return BigInt(Math.trunc(v));
}

/**
 * The TensorProto for a tensor: the message it was read from when the tensor is unchanged (renamed if needed),
 * else a new message with raw_data.
 */
export function encodeTensor(t: Tensor, name: string, options: EncodeOptions = {}): TensorProto {
  let out: TensorProto;
  const src = tensorSrc.get(t);
  if (src) {
    out = src.name === name ? src : copyOf(src);
    if (out !== src) setScalar(out, 'name', name, '');
    if (out.dataLocation === TensorProto_DataLocation.EXTERNAL) {
      // its location is relative to the folder it was loaded from, which is not where these bytes go: write the
      // data the loader read inline (saveModel's placeTensor moves it to a new data file when it should be external)
      if (out === src) out = copyOf(src);
      delete (out as Partial<TensorProto>).dataLocation;
      out.externalData = [];
      out.rawData = t.bytes() as TensorProto['rawData'];
    }
  } else {
    out = create(TensorProtoSchema, { dims: t.dims.map((d) => BigInt(d)), dataType: dtypeCode(t.dtype) });
    if (name) out.name = name;
    if (t.dtype === 'string') out.stringData = t.strings() as TensorProto['stringData'];
    else out.rawData = t.bytes() as TensorProto['rawData'];
  }
  return options.placeTensor ? options.placeTensor(t, out) : out;
}

/**
 * A SparseTensorProto (COO) for an entry of `graph.sparseInitializers`: `values` holds the NNZ non-zero elements
 * ([NNZ], named `name`: a sparse initializer takes its name from its values tensor), `indices` their linearized
 * positions in the dense tensor ([NNZ], ascending, no duplicates: the 1-D form of the ONNX spec), and `dims` the
 * dense shape. Indices should be int64: onnx's checker refuses any other type; onnxruntime 1.30 also reads int32,
 * int16 and int8 ones, which are allowed here for callers that target it alone. The IR keeps sparse initializers
 * opaque (`{ name, value, message }`), so this is the one place that builds such a message; `decodeSparseTensor`
 * reads one back.
 *
 * @example
 * ```ts
 * const msg = encodeSparseTensor('W', [2, 2], Tensor.from('float32', [1], [5]), Tensor.from('int64', [1], [3n]));
 * graph.sparseInitializers.push({ name: 'W', value, message: msg });
 * ```
 */
export function encodeSparseTensor(name: string, dims: readonly number[], values: Tensor, indices: Tensor): SparseTensorProto {
  const integer = ['int64', 'int32', 'int16', 'int8'].includes(indices.dtype);
  if (values.dims.length !== 1 || !integer || indices.dims.length !== 1 || indices.dims[0] !== values.dims[0]) {
    throw new GraphError(`Sparse tensor "${name}": expected values [NNZ] and int64 indices [NNZ], found values ${JSON.stringify(values.dims)} and ${indices.dtype} indices ${JSON.stringify(indices.dims)}`);
  }
  return create(SparseTensorProtoSchema, {
    values: encodeTensor(values, name),
    indices: encodeTensor(indices, `${name}_indices`),
    dims: dims.map((d) => BigInt(d)),
  });
}

/**
 * Reads a SparseTensorProto (an opaque `graph.sparseInitializers[i].message`): its dense dims, values and indices
 * (either index form: [NNZ] linearized, or [NNZ, rank]).
 *
 * @example
 * ```ts
 * const { dims, values, indices } = decodeSparseTensor(graph.sparseInitializers[0].message);
 * ```
 */
export function decodeSparseTensor(message: unknown, source = 'model'): { name: string; dims: number[]; values: Tensor; indices: Tensor } {
  const sp = message as SparseTensorProto;
  if (!sp?.values || !sp.indices) throw new LoadError(`${source}: a sparse tensor has no values or no indices`);
  const ctx: DecodeCtx = { source };
  return { name: sp.values.name, dims: sp.dims.map(Number), values: decodeTensor(sp.values, ctx), indices: decodeTensor(sp.indices, ctx) };
}

function encodeFunction(f: OnnxFunction, options: EncodeOptions): FunctionProto {
  const src = funcSrc.get(f);
  const out = src ? copyOf(src) : fresh(FunctionProtoSchema);
  setScalar(out, 'name', f.name, '');
  setScalar(out, 'domain', f.domain, '');
  setScalar(out, 'overload', f.overload, '');
  setScalar(out, 'docString', f.docString, '');
  out.metadataProps = writeMetadata(out.metadataProps, f.metadata);
  out.input = f.body.inputs.map((v) => v.name);
  out.output = f.body.outputs.map((v) => v.name);
  out.attribute = [...f.attributeNames];
  out.attributeProto = [...f.attributeDefaults].map(([name, a]) => encodeAttr(name, a, options));
  out.opsetImport = encodeOpsets(src?.opsetImport ?? [], f.opsetImports);
  const body = encodeGraph(f.body, options);
  out.node = body.node;
  out.valueInfo = body.valueInfo;
  return out;
}

/** Tensors with at least this many bytes of raw_data are written by reference, not copied into the encoder. */
const BY_REFERENCE = 64 * 1024;

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}

/** Tag and length of a length-delimited field. */
function lengthPrefix(field: number, length: number): Uint8Array {
  const tag = varint(field * 8 + 2);
  const len = varint(length);
  const out = new Uint8Array(tag.length + len.length);
  out.set(tag);
  out.set(len, tag.length);
  return out;
}

/**
 * Serializes a ModelProto as a list of chunks whose concatenation is the file, without copying large tensor
 * data: the encoder would copy each raw_data once per nesting level (TensorProto, GraphProto, ModelProto),
 * which made saving 5x slower than writing the file. Instead the main graph's large initializers are written
 * after the rest of the graph, each as its encoded header followed by a raw_data field that refers to the
 * tensor's own bytes. Protobuf parsers accept fields in any order and merge a message field given in
 * several pieces, so the result parses to the same message (the round-trip test checks this with onnx).
 */
export function serializeModelProto(proto: ModelProto): Uint8Array[] {
  const opts = { writeUnknownFields: true };
  const graph = proto.graph;
  const big = graph ? graph.initializer.filter((t) => t.rawData.byteLength >= BY_REFERENCE) : [];
  if (!graph || big.length === 0) return [toBinary(ModelProtoSchema, proto, opts)];
  const bigSet = new Set(big);
  const g0 = copyOf(graph);
  g0.initializer = graph.initializer.filter((t) => !bigSet.has(t));
  const m0 = copyOf(proto);
  delete (m0 as Partial<ModelProto>).graph;
  const graphChunks: Uint8Array[] = [];
  // initializers stay in file order: the small ones go with the rest of the graph only when they all come first
  const order = graph.initializer;
  const firstBig = order.findIndex((t) => bigSet.has(t));
  const smallAfterBig = order.slice(firstBig).some((t) => !bigSet.has(t));
  if (smallAfterBig) g0.initializer = order.slice(0, firstBig);
  graphChunks.push(toBinary(GraphProtoSchema, g0, opts));
  for (const t of smallAfterBig ? order.slice(firstBig) : big) {
    if (!bigSet.has(t)) {
      const b = toBinary(TensorProtoSchema, t, opts);
      graphChunks.push(lengthPrefix(5, b.byteLength), b);
      continue;
    }
    const head = copyOf(t);
    delete (head as Partial<TensorProto>).rawData;
    const h = toBinary(TensorProtoSchema, head, opts);
    const rawPrefix = lengthPrefix(9, t.rawData.byteLength);
    graphChunks.push(lengthPrefix(5, h.byteLength + rawPrefix.byteLength + t.rawData.byteLength), h, rawPrefix, t.rawData);
  }
  const graphLength = graphChunks.reduce((n, c) => n + c.byteLength, 0);
  return [toBinary(ModelProtoSchema, m0, opts), lengthPrefix(7, graphLength), ...graphChunks];
}

/**
 * Serializes a model to ONNX protobuf bytes (all data inline).
 *
 * @example
 * ```ts
 * const bytes = encodeModel(model);
 * ```
 */
export function encodeModel(m: Model, options: EncodeOptions = {}): Uint8Array {
  let chunks: Uint8Array[];
  try {
    chunks = serializeModelProto(modelToProto(m, options));
  } catch (e) {
    if (e instanceof OnnxpressError) throw e;
    // e.g. an IR field set to NaN, which BigInt refuses: still a typed error, not a crash
    throw new GraphError(`Cannot serialize model: ${(e as Error).message}`, { cause: e });
  }
  if (chunks.length === 1) return chunks[0];
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  if (total > 2 ** 31 - 1) throw new GraphError(`Cannot serialize model: ${total} bytes is over protobuf's 2 GiB limit; save it with external data`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
