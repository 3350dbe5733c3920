/**
 * The built-in student family: plain CNNs (Conv → [BatchNormalization] → Relu → [MaxPool] blocks, Flatten, Gemm
 * head) and MLPs (Gemm → Relu layers), described as data (`CnnSpec`, `MlpSpec`), read off a teacher of that shape
 * (`describeTeacher`), scaled in width and depth (`scaleSpec`), and built as untrained ONNX models (`makeCnn`,
 * `makeMlp`) with PyTorch's default initialization, seeded.
 *
 * Scaling keeps what the task fixes: the first layer's input channels (or features) and the head's classes. Width
 * multiplies every hidden channel count and hidden width (rounded, at least 1). Depth multiplies the number of conv
 * blocks (CNN) or hidden layers (MLP):
 * - fewer blocks: the first ones are kept, and the pools of the dropped blocks move onto the last kept block, so
 *   the head sees the same spatial size;
 * - more blocks: each block's conv is repeated (without its pool) before the block, widths unchanged.
 *
 * Initialization follows torch.nn defaults: Conv and Linear weights and biases U(−1/√fanIn, 1/√fanIn) (what
 * `kaiming_uniform_(a=√5)` comes to), BatchNormalization scale 1, bias 0, running mean 0, running variance 1.
 */
import { PassError, expected } from '../errors.js';
import { Model, attr, type Graph, type Node, type Value } from '../onnx/ir.js';
import { Tensor } from '../onnx/tensor.js';
import { mulberry32 } from '../util/random.js';

/** One CNN block: a convolution, optional BatchNormalization, Relu, optional MaxPool. */
export interface ConvBlockSpec {
  channels: number;
  kernel: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  strides: [number, number];
  batchNorm: boolean;
  /** Max pooling after the Relu (kernel and strides), if any. */
  pools: { kernel: [number, number]; strides: [number, number] }[];
}

/** A plain CNN: input [C, H, W] → blocks → Flatten → hidden Gemm+Relu layers → Gemm to classes. */
export interface CnnSpec {
  kind: 'cnn';
  input: [number, number, number];
  blocks: ConvBlockSpec[];
  hidden: number[];
  classes: number;
}

/** A plain MLP: input [D] → hidden Gemm+Relu layers → Gemm to classes. */
export interface MlpSpec {
  kind: 'mlp';
  input: number;
  hidden: number[];
  classes: number;
  /** Whether the input is an image flattened by a leading Flatten node, and its [C, H, W]. */
  flattenFrom?: number[];
}

export type StudentSpec = CnnSpec | MlpSpec;

/** Options of `makeCnn` / `makeMlp` / `makeFromSpec`. */
export interface BuildOptions {
  /** Seed of the weight initialization (default 0). */
  seed?: number;
  /** Default-domain opset (default 17). */
  opset?: number;
  /** Names of the input and output (default `input`, `logits`). */
  inputName?: string;
  outputName?: string;
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
const rng = mulberry32;

function uniform(n: number, bound: number, next: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (next() * 2 - 1) * bound;
  return a;
}

function convOut(size: number, k: number, padA: number, padB: number, stride: number): number {
  return Math.floor((size + padA + padB - k) / stride) + 1;
}

/** The [C, H, W] after the conv blocks of a CNN spec. */
export function featureShape(spec: CnnSpec): [number, number, number] {
  let [c, h, w] = spec.input;
  for (const b of spec.blocks) {
    c = b.channels;
    h = convOut(h, b.kernel[0], b.pads[0], b.pads[2], b.strides[0]);
    w = convOut(w, b.kernel[1], b.pads[1], b.pads[3], b.strides[1]);
    for (const p of b.pools) {
      h = convOut(h, p.kernel[0], 0, 0, p.strides[0]);
      w = convOut(w, p.kernel[1], 0, 0, p.strides[1]);
    }
  }
  if (h < 1 || w < 1) throw new PassError(`The CNN's blocks shrink a ${spec.input[1]}×${spec.input[2]} input to nothing (${h}×${w})`);
  return [c, h, w];
}

/** Trainable parameter count of a spec (BatchNormalization running statistics not counted). */
export function parameterCount(spec: StudentSpec): number {
  let n = 0;
  let features: number;
  if (spec.kind === 'cnn') {
    let cin = spec.input[0];
    for (const b of spec.blocks) {
      n += b.channels * cin * b.kernel[0] * b.kernel[1] + (b.batchNorm ? 2 * b.channels : b.channels);
      cin = b.channels;
    }
    const [c, h, w] = featureShape(spec);
    features = c * h * w;
  } else features = spec.input;
  for (const width of [...spec.hidden, spec.classes]) {
    n += width * features + width;
    features = width;
  }
  return n;
}

class Builder {
  readonly model = new Model();
  readonly g: Graph;
  readonly next: () => number;
  constructor(options: BuildOptions, producer: string) {
    this.model.irVersion = 8;
    this.model.opsetImports.set('', options.opset ?? 17);
    this.model.producerName = producer;
    this.g = this.model.graph;
    this.g.name = producer;
    this.next = rng(options.seed ?? 0);
  }

  init(name: string, dims: number[], data: Float32Array): Value {
    return this.g.addInitializer(name, Tensor.from('float32', dims, data));
  }

  node(opType: string, name: string, inputs: Value[], attributes: Record<string, ReturnType<typeof attr.int>> = {}): Value {
    return this.g.addNode({ opType, name, inputs, outputs: [`${name}_out`], attributes }).output();
  }

  gemm(x: Value, name: string, fanIn: number, out: number): Value {
    const bound = 1 / Math.sqrt(fanIn);
    const w = this.init(`${name}.weight`, [out, fanIn], uniform(out * fanIn, bound, this.next));
    const b = this.init(`${name}.bias`, [out], uniform(out, bound, this.next));
    return this.node('Gemm', name, [x, w, b], { transB: attr.int(1) });
  }

  input(name: string, shape: number[]): Value {
    const x = this.g.declareValue(name);
    x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', ...shape] };
    this.g.inputs.push(x);
    return x;
  }

  output(v: Value, name: string, classes: number): void {
    v.name = name;
    v.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', classes] };
    this.g.outputs.push(v);
  }

  head(x: Value, features: number, hidden: number[], classes: number): Value {
    let h = x;
    let f = features;
    hidden.forEach((width, i) => {
      h = this.node('Relu', `fc${i + 1}_relu`, [this.gemm(h, `fc${i + 1}`, f, width)]);
      f = width;
    });
    return this.gemm(h, `fc${hidden.length + 1}`, f, classes);
  }
}

function checkSpec(spec: StudentSpec): void {
  const positive = (v: number, what: string) => {
    if (!Number.isSafeInteger(v) || v < 1) throw new PassError(expected('a positive integer', what, v));
  };
  positive(spec.classes, 'classes');
  spec.hidden.forEach((h, i) => positive(h, `hidden[${i}]`));
  if (spec.kind === 'cnn') {
    spec.input.forEach((d, i) => positive(d, `input[${i}]`));
    spec.blocks.forEach((b, i) => positive(b.channels, `blocks[${i}].channels`));
  } else positive(spec.input, 'input');
}

/**
 * Builds an untrained CNN. Its input `input` is float32 [batch, C, H, W]; its output `logits` [batch, classes].
 *
 * @example
 * ```ts
 * const pad1 = [1, 1, 1, 1] as [number, number, number, number];
 * const block = (channels: number) => ({ channels, kernel: [3, 3], pads: pad1, strides: [1, 1], batchNorm: true,
 *   pools: [{ kernel: [2, 2], strides: [2, 2] }] }) as ConvBlockSpec;
 * const model = makeCnn({ kind: 'cnn', input: [1, 28, 28], blocks: [block(32), block(64)], hidden: [128], classes: 10 }, { seed: 1 });
 * ```
 */
export function makeCnn(spec: CnnSpec, options: BuildOptions = {}): Model {
  checkSpec(spec);
  const b = new Builder(options, 'onnxpress.cnn');
  const [c0, h0, w0] = spec.input;
  let x = b.input(options.inputName ?? 'input', [c0, h0, w0]);
  let cin = c0;
  spec.blocks.forEach((blk, i) => {
    const name = `conv${i + 1}`;
    const [kh, kw] = blk.kernel;
    const fanIn = cin * kh * kw;
    const bound = 1 / Math.sqrt(fanIn);
    const w = b.init(`${name}.weight`, [blk.channels, cin, kh, kw], uniform(blk.channels * fanIn, bound, b.next));
    const inputs = [x, w];
    // a bias in front of BatchNormalization is cancelled by its mean subtraction: leave it out
    if (!blk.batchNorm) inputs.push(b.init(`${name}.bias`, [blk.channels], uniform(blk.channels, bound, b.next)));
    x = b.node('Conv', name, inputs, {
      kernel_shape: attr.ints([kh, kw]),
      pads: attr.ints([...blk.pads]),
      strides: attr.ints([...blk.strides]),
    } as never);
    if (blk.batchNorm) {
      const ch = blk.channels;
      const ones = () => new Float32Array(ch).fill(1);
      x = b.node(
        'BatchNormalization',
        `bn${i + 1}`,
        [x, b.init(`bn${i + 1}.weight`, [ch], ones()), b.init(`bn${i + 1}.bias`, [ch], new Float32Array(ch)), b.init(`bn${i + 1}.running_mean`, [ch], new Float32Array(ch)), b.init(`bn${i + 1}.running_var`, [ch], ones())],
        { epsilon: attr.float(1e-5), momentum: attr.float(0.9) } as never,
      );
    }
    x = b.node('Relu', `relu${i + 1}`, [x]);
    blk.pools.forEach((p, j) => {
      x = b.node('MaxPool', `pool${i + 1}${blk.pools.length > 1 ? `_${j + 1}` : ''}`, [x], { kernel_shape: attr.ints([...p.kernel]), strides: attr.ints([...p.strides]) } as never);
    });
    cin = blk.channels;
  });
  const [c, h, w] = featureShape(spec);
  x = b.node('Flatten', 'flatten', [x], { axis: attr.int(1) });
  const logits = b.head(x, c * h * w, spec.hidden, spec.classes);
  b.output(logits, options.outputName ?? 'logits', spec.classes);
  b.g.validate();
  return b.model;
}

/**
 * Builds an untrained MLP. Its input `input` is float32 [batch, D] (or [batch, C, H, W] with a Flatten first, when
 * `flattenFrom` is set); its output `logits` [batch, classes].
 *
 * @example
 * ```ts
 * const mlp = makeMlp({ kind: 'mlp', input: 784, hidden: [128], classes: 10 }, { seed: 0 });
 * ```
 */
export function makeMlp(spec: MlpSpec, options: BuildOptions = {}): Model {
  checkSpec(spec);
  const b = new Builder(options, 'onnxpress.mlp');
  let x = b.input(options.inputName ?? 'input', spec.flattenFrom ? [...spec.flattenFrom] : [spec.input]);
  if (spec.flattenFrom) x = b.node('Flatten', 'flatten', [x], { axis: attr.int(1) });
  const logits = b.head(x, spec.input, spec.hidden, spec.classes);
  b.output(logits, options.outputName ?? 'logits', spec.classes);
  b.g.validate();
  return b.model;
}

/** Builds a model from a spec. */
export function makeFromSpec(spec: StudentSpec, options: BuildOptions = {}): Model {
  return spec.kind === 'cnn' ? makeCnn(spec, options) : makeMlp(spec, options);
}

/**
 * Scales a spec: hidden channels and widths × `width`, conv blocks or hidden layers × `depth` (see the module doc).
 *
 * @example
 * ```ts
 * scaleSpec(describeTeacher(teacher), { width: 0.25 });
 * ```
 */
export function scaleSpec(spec: StudentSpec, { width = 1, depth = 1 }: { width?: number; depth?: number }): StudentSpec {
  if (!(width > 0) || !Number.isFinite(width)) throw new PassError(expected('a positive number', 'studentWidth', width));
  if (!(depth > 0) || !Number.isFinite(depth)) throw new PassError(expected('a positive number', 'studentDepth', depth));
  const w = (n: number) => Math.max(1, Math.round(n * width));
  const hiddenCount = (n: number, min: number) => Math.max(min, Math.round(n * depth));
  const scaleHidden = (hidden: number[], min: number): number[] => {
    const n = hiddenCount(hidden.length, min);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(w(hidden[Math.min(i, hidden.length - 1)]!));
    return out;
  };
  if (spec.kind === 'mlp') return { ...spec, hidden: scaleHidden(spec.hidden, spec.hidden.length ? 1 : 0) };
  const n = spec.blocks.length;
  const keep = hiddenCount(n, 1);
  let blocks: ConvBlockSpec[];
  if (keep <= n) {
    blocks = spec.blocks.slice(0, keep).map((b) => ({ ...b, channels: w(b.channels), pools: [...b.pools] }));
    // pools of dropped blocks move onto the last kept block, so the head sees the same spatial size
    for (const dropped of spec.blocks.slice(keep)) blocks[blocks.length - 1]!.pools.push(...dropped.pools);
  } else {
    // repeat convs (stride 1, same padding, no pool) in front of blocks, spread evenly from the first block on
    blocks = [];
    const extra = keep - n;
    spec.blocks.forEach((b, i) => {
      const repeats = Math.floor(extra / n) + (i < extra % n ? 1 : 0);
      for (let r = 0; r < repeats; r++) {
        const [kh, kw] = b.kernel;
        blocks.push({ ...b, channels: w(b.channels), strides: [1, 1], pads: [(kh - 1) >> 1, (kw - 1) >> 1, kh >> 1, kw >> 1], pools: [] });
      }
      blocks.push({ ...b, channels: w(b.channels), pools: [...b.pools] });
    });
  }
  return { ...spec, blocks, hidden: scaleHidden(spec.hidden, 0) };
}

/** Follows a value through nodes that do not change it (Identity, inference Dropout). */
function onlyConsumer(v: Value, what: string): Node | undefined {
  const users = v.consumers;
  if (v.isGraphOutput) return undefined;
  if (users.length !== 1) throw notFamily(`${what} "${v.name}" is read by ${users.length} nodes (the family is a plain chain)`);
  return users[0]!;
}

function notFamily(why: string): PassError {
  return new PassError(
    `The teacher is not a plain CNN (Conv/BatchNormalization/Relu/MaxPool blocks, Flatten, Gemm head) or MLP (Gemm/Relu), so no built-in student can be scaled from it: ${why}. Give a student model instead.`,
  );
}

function constDims(v: Value | null | undefined): readonly number[] | undefined {
  return v?.initializer?.dims;
}

/**
 * Reads a teacher's shape as a spec of the built-in family: a chain from its one input to its one output of
 * Conv [BatchNormalization] Relu [MaxPool…] blocks, then Flatten (or Reshape), then Gemm/MatMul(+Add) layers with
 * Relu between. Identity and Dropout nodes are skipped. Anything else is a PassError that names the node.
 *
 * @example
 * ```ts
 * describeTeacher(await loadModel('fixtures/fmnist-cnn.onnx'));
 * // { kind: 'cnn', input: [1, 28, 28], blocks: [{ channels: 16, … }, { channels: 32, … }], hidden: [64], classes: 10 }
 * ```
 */
export function describeTeacher(teacher: Model): StudentSpec {
  const g = teacher.graph;
  const inputs = g.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) throw notFamily(`it has ${inputs.length} data inputs, not 1`);
  if (g.outputs.length < 1) throw notFamily('it has no output');
  const input = inputs[0]!;
  const shape = input.shape;
  if (!shape || shape.slice(1).some((d) => typeof d !== 'number')) {
    throw notFamily(`the shape of input "${input.name}" is not known past the batch dimension (${JSON.stringify(shape ?? null)})`);
  }
  const sample = shape.slice(1) as number[];
  const blocks: ConvBlockSpec[] = [];
  const dense: number[] = [];
  let flattened = false;
  let v: Value = input;
  let node = onlyConsumer(v, 'input');
  const intsOf = (n: Node, key: string, fallback: number[]) => n.getInts(key, fallback);
  while (node) {
    const op = node.opType;
    if (node.domain !== '' && node.domain !== 'ai.onnx') throw notFamily(`${node} is not a standard op`);
    const out = node.output(0);
    if (op === 'Identity' || op === 'Dropout') {
      // pass through
    } else if (op === 'Conv') {
      if (flattened) throw notFamily(`${node} comes after the Flatten`);
      const wd = constDims(node.inputs[1]);
      if (!wd || wd.length !== 4) throw notFamily(`${node} has no constant 4-D weight`);
      if (node.getInt('group', 1) !== 1) throw notFamily(`${node} is a grouped convolution`);
      if (intsOf(node, 'dilations', [1, 1]).some((d) => d !== 1)) throw notFamily(`${node} is dilated`);
      if (node.getString('auto_pad', 'NOTSET') !== 'NOTSET') throw notFamily(`${node} uses auto_pad`);
      if (sample.length !== 3) throw notFamily(`${node} needs an input shaped [batch, C, H, W]`);
      const p = intsOf(node, 'pads', [0, 0, 0, 0]);
      blocks.push({
        channels: wd[0]!,
        kernel: [wd[2]!, wd[3]!],
        pads: [p[0]!, p[1]!, p[2]!, p[3]!],
        strides: intsOf(node, 'strides', [1, 1]) as [number, number],
        batchNorm: false,
        pools: [],
      });
    } else if (op === 'BatchNormalization') {
      const last = blocks[blocks.length - 1];
      if (!last || last.batchNorm || flattened) throw notFamily(`${node} does not follow a Conv`);
      last.batchNorm = true;
    } else if (op === 'Relu') {
      // between layers; the family puts one after every conv and every hidden dense layer
    } else if (op === 'MaxPool') {
      const last = blocks[blocks.length - 1];
      if (!last || flattened) throw notFamily(`${node} does not follow a conv block`);
      if (intsOf(node, 'pads', [0, 0, 0, 0]).some((x) => x !== 0) || node.getInt('ceil_mode', 0) !== 0) throw notFamily(`${node} pads or uses ceil_mode`);
      const k = intsOf(node, 'kernel_shape', []);
      last.pools.push({ kernel: [k[0]!, k[1]!], strides: intsOf(node, 'strides', [1, 1]) as [number, number] });
    } else if (op === 'Flatten' || op === 'Reshape') {
      if (op === 'Flatten' && node.getInt('axis', 1) !== 1) throw notFamily(`${node} flattens from axis ${node.getInt('axis', 1)}, not 1`);
      flattened = true;
    } else if (op === 'Gemm' || op === 'MatMul') {
      const wd = constDims(node.inputs[1]);
      if (!wd || wd.length !== 2) throw notFamily(`${node} has no constant 2-D weight`);
      const transB = op === 'Gemm' && node.getInt('transB', 0) === 1;
      if (op === 'Gemm' && node.getInt('transA', 0) !== 0) throw notFamily(`${node} uses transA`);
      dense.push(transB ? wd[0]! : wd[1]!);
    } else if (op === 'Add' && node.inputs[0]?.producer?.opType === 'MatMul') {
      // MatMul + Add is a Gemm
    } else {
      throw notFamily(`${node} is a ${op}`);
    }
    v = out;
    node = onlyConsumer(v, `${node}'s output`);
  }
  if (!dense.length) throw notFamily('it has no Gemm or MatMul head');
  const classes = dense[dense.length - 1]!;
  const hidden = dense.slice(0, -1);
  if (blocks.length) return { kind: 'cnn', input: sample as [number, number, number], blocks, hidden, classes };
  const features = sample.reduce((a, b) => a * b, 1);
  return sample.length === 1 ? { kind: 'mlp', input: features, hidden, classes } : { kind: 'mlp', input: features, hidden, classes, flattenFrom: sample };
}
