/**
 * TensorFlow.js layers models (a Keras config in `model.json`) rewritten as the equivalent TF graph, so that
 * `toOnnx.ts` converts both kinds with one op table. Sequential and functional models are read; each layer
 * becomes the TF ops Keras runs for it (Conv2D + BiasAdd + activation, MatMul + BiasAdd, …). BatchNormalization
 * is folded into a multiply and an add (new constants are added to the weights map). Flatten becomes the internal
 * op `Flatten` (no TF op has that name), which converts to ONNX Flatten without needing static shapes.
 */
import { GraphError, LoadError } from '../../errors.js';
import { tfAttr, type DecodedWeight, type TfAttr, type TfGraphDef, type TfNode, type TfTensorInfo } from './format.js';

interface LayerConfig {
  class_name: string;
  name?: string;
  config: Record<string, unknown>;
  inbound_nodes?: unknown[];
}

class Unsupported extends Error {}

/** Rewrites a layers model's topology as a GraphDef; adds folded constants to `weights`. */
export function layersToGraph(topo: Record<string, unknown>, weights: Map<string, DecodedWeight>, source: string): { graph: TfGraphDef; signature: { inputs: Record<string, TfTensorInfo>; outputs: Record<string, TfTensorInfo> } } {
  const model = (topo.model_config ?? topo) as { class_name?: string; config?: unknown };
  const cls = model.class_name;
  const cfg = model.config as { layers?: LayerConfig[]; input_layers?: unknown[]; output_layers?: unknown[]; name?: string } | LayerConfig[] | undefined;
  const layers: LayerConfig[] | undefined = Array.isArray(cfg) ? cfg : cfg?.layers;
  if (!Array.isArray(layers)) throw new LoadError(`${source}: the layers model has no "layers" list`);
  const nodes: TfNode[] = [];
  const names = new Set<string>();
  const uniq = (base: string): string => {
    let n = base.replace(/[^A-Za-z0-9_./-]/g, '_');
    for (let i = 1; names.has(n); i++) n = `${base}_${i}`;
    names.add(n);
    return n;
  };
  const op = (o: string, input: string[], attr: Record<string, TfAttr>, base: string): string => {
    const name = uniq(base);
    nodes.push({ name, op: o, input, attr });
    return name;
  };
  const constNode = (name: string): string => {
    if (!names.has(name)) {
      names.add(name);
      nodes.push({ name, op: 'Const', attr: {} });
    }
    return name;
  };
  const addConst = (base: string, dtype: 'float32' | 'int32', shape: number[], data: Float32Array | Int32Array): string => {
    const name = uniq(base);
    weights.set(name, { name, dtype, shape, data });
    nodes.push({ name, op: 'Const', attr: {} });
    return name;
  };
  const weight = (layer: string, param: string, required = true): string | undefined => {
    const key = [...weights.keys()].find((k) => k === `${layer}/${param}` || k.endsWith(`/${layer}/${param}`));
    if (!key && required) throw new LoadError(`${source}: layer "${layer}" needs weight "${layer}/${param}", which the weights manifest lacks`);
    return key && constNode(key);
  };
  const activation = (x: string, act: unknown, base: string): string => {
    const a = typeof act === 'string' ? act : act && typeof act === 'object' ? String((act as { class_name?: string }).class_name ?? 'linear').toLowerCase() : 'linear';
    switch (a) {
      case 'linear':
        return x;
      case 'relu':
        return op('Relu', [x], {}, `${base}/Relu`);
      case 'relu6':
        return op('Relu6', [x], {}, `${base}/Relu6`);
      case 'sigmoid':
        return op('Sigmoid', [x], {}, `${base}/Sigmoid`);
      case 'tanh':
        return op('Tanh', [x], {}, `${base}/Tanh`);
      case 'elu':
        return op('Elu', [x], {}, `${base}/Elu`);
      case 'selu':
        return op('Selu', [x], {}, `${base}/Selu`);
      case 'softmax':
        return op('Softmax', [x], {}, `${base}/Softmax`);
      default:
        throw new Unsupported(`activation "${a}"`);
    }
  };
  const int2 = (v: unknown, what: string): [number, number] => {
    if (typeof v === 'number') return [v, v];
    if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
    throw new LoadError(`${source}: ${what} should be a number or a pair, found ${JSON.stringify(v)}`);
  };
  const padding = (p: unknown): TfAttr => tfAttr.s(String(p ?? 'valid').toUpperCase());
  const channelsLast = (l: LayerConfig) => {
    const f = l.config.data_format;
    if (f !== undefined && f !== null && f !== 'channels_last') throw new Unsupported(`data_format ${String(f)}`);
  };

  // tensors by "layer:nodeIndex:tensorIndex" (Sequential: layer order)
  const out = new Map<string, string>();
  const sig = { inputs: {} as Record<string, TfTensorInfo>, outputs: {} as Record<string, TfTensorInfo> };
  const placeholder = (name: string, shape: unknown): string => {
    const dims = Array.isArray(shape) ? shape.map((d) => (d === null ? -1 : Number(d))) : undefined;
    const n = uniq(name);
    nodes.push({ name: n, op: 'Placeholder', attr: { dtype: tfAttr.type('DT_FLOAT'), shape: tfAttr.shape(dims) } });
    sig.inputs[name] = { name: `${n}:0`, dtype: 'DT_FLOAT' };
    return n;
  };

  const convertLayer = (l: LayerConfig, inputs: string[]): string => {
    const c = l.config;
    const name = String(c.name ?? l.name);
    const x = inputs[0]!;
    switch (l.class_name) {
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        channelsLast(l);
        const depthwise = l.class_name === 'DepthwiseConv2D';
        const [sh, sw] = int2(c.strides ?? 1, `${name}.strides`);
        const [dh, dw] = int2(c.dilation_rate ?? 1, `${name}.dilation_rate`);
        if (Number(c.groups ?? 1) !== 1) throw new Unsupported('groups');
        let y = op(depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', [x, weight(name, depthwise ? 'depthwise_kernel' : 'kernel')!], { strides: tfAttr.ints([1, sh, sw, 1]), dilations: tfAttr.ints([1, dh, dw, 1]), padding: padding(c.padding), data_format: tfAttr.s('NHWC') }, name);
        if (c.use_bias !== false) y = op('BiasAdd', [y, weight(name, 'bias')!], {}, `${name}/BiasAdd`);
        return activation(y, c.activation, name);
      }
      case 'Dense': {
        let y = op('MatMul', [x, weight(name, 'kernel')!], { transpose_a: tfAttr.b(false), transpose_b: tfAttr.b(false) }, name);
        if (c.use_bias !== false) y = op('BiasAdd', [y, weight(name, 'bias')!], {}, `${name}/BiasAdd`);
        return activation(y, c.activation, name);
      }
      case 'BatchNormalization': {
        const axis = Array.isArray(c.axis) ? c.axis : [c.axis ?? -1];
        if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3 && axis[0] !== 1)) throw new Unsupported(`axis ${JSON.stringify(c.axis)} (the last axis converts)`);
        const eps = Number(c.epsilon ?? 1e-3);
        const get = (p: string) => {
          const k = weight(name, p, false);
          return k ? (weights.get(k)!.data as Float32Array) : undefined;
        };
        const mean = get('moving_mean');
        const variance = get('moving_variance');
        if (!mean || !variance) throw new LoadError(`${source}: layer "${name}" lacks moving_mean / moving_variance weights`);
        const gamma = c.scale === false ? undefined : get('gamma');
        const beta = c.center === false ? undefined : get('beta');
        const C = mean.length;
        const f = new Float32Array(C);
        const s = new Float32Array(C);
        for (let i = 0; i < C; i++) {
          f[i] = (gamma?.[i] ?? 1) / Math.sqrt(variance[i]! + eps);
          s[i] = (beta?.[i] ?? 0) - mean[i]! * f[i]!;
        }
        const m = op('Mul', [x, addConst(`${name}/scale`, 'float32', [C], f)], {}, `${name}/mul`);
        return op('AddV2', [m, addConst(`${name}/shift`, 'float32', [C], s)], {}, name);
      }
      case 'Activation':
        return activation(x, c.activation, name);
      case 'ReLU': {
        const max = c.max_value === null || c.max_value === undefined ? undefined : Number(c.max_value);
        const slope = Number(c.negative_slope ?? 0);
        if (Number(c.threshold ?? 0) !== 0) throw new Unsupported('threshold');
        if (slope !== 0) {
          if (max !== undefined) throw new Unsupported('negative_slope with max_value');
          return op('LeakyRelu', [x], { alpha: tfAttr.f(slope) }, name);
        }
        if (max === undefined) return op('Relu', [x], {}, name);
        if (max === 6) return op('Relu6', [x], {}, name);
        return op('ClipByValue', [x, addConst(`${name}/lo`, 'float32', [], new Float32Array([0])), addConst(`${name}/hi`, 'float32', [], new Float32Array([max]))], {}, name);
      }
      case 'LeakyReLU':
        return op('LeakyRelu', [x], { alpha: tfAttr.f(Number(c.alpha ?? 0.3)) }, name);
      case 'Softmax':
        if (c.axis !== undefined && c.axis !== -1) throw new Unsupported(`axis ${JSON.stringify(c.axis)}`);
        return op('Softmax', [x], {}, name);
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        channelsLast(l);
        const [kh, kw] = int2(c.pool_size ?? 2, `${name}.pool_size`);
        const [sh, sw] = c.strides === null || c.strides === undefined ? [kh, kw] : int2(c.strides, `${name}.strides`);
        return op(l.class_name === 'MaxPooling2D' ? 'MaxPool' : 'AvgPool', [x], { ksize: tfAttr.ints([1, kh, kw, 1]), strides: tfAttr.ints([1, sh, sw, 1]), padding: padding(c.padding), data_format: tfAttr.s('NHWC') }, name);
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        channelsLast(l);
        const axes = addConst(`${name}/axes`, 'int32', [2], new Int32Array([1, 2]));
        return op(l.class_name === 'GlobalAveragePooling2D' ? 'Mean' : 'Max', [x, axes], { keep_dims: tfAttr.b(c.keepdims === true) }, name);
      }
      case 'Flatten':
        return op('Flatten', [x], {}, name);
      case 'Reshape': {
        const t = (c.target_shape as number[]).map(Number);
        return op('Reshape', [x, addConst(`${name}/shape`, 'int32', [t.length + 1], Int32Array.from([-1, ...t]))], {}, name);
      }
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        return op('Identity', [x], {}, name);
      case 'Add':
      case 'Multiply':
      case 'Subtract':
      case 'Maximum':
      case 'Minimum': {
        const tfOp = { Add: 'AddV2', Multiply: 'Mul', Subtract: 'Sub', Maximum: 'Maximum', Minimum: 'Minimum' }[l.class_name]!;
        let y = inputs[0]!;
        for (let i = 1; i < inputs.length; i++) y = op(tfOp, [y, inputs[i]!], {}, i === inputs.length - 1 ? name : `${name}/${i}`);
        return y;
      }
      case 'Concatenate': {
        const axis = addConst(`${name}/axis`, 'int32', [], new Int32Array([Number(c.axis ?? -1)]));
        return op('ConcatV2', [...inputs, axis], { N: tfAttr.i(inputs.length) }, name);
      }
      case 'ZeroPadding2D': {
        channelsLast(l);
        const p = c.padding ?? 1;
        let rows: [number, number];
        let cols: [number, number];
        if (typeof p === 'number') rows = cols = [p, p];
        else if (Array.isArray(p) && typeof p[0] === 'number') {
          rows = [Number(p[0]), Number(p[0])];
          cols = [Number(p[1]), Number(p[1])];
        } else {
          rows = int2((p as unknown[])[0], `${name}.padding`);
          cols = int2((p as unknown[])[1], `${name}.padding`);
        }
        return op('Pad', [x, addConst(`${name}/paddings`, 'int32', [4, 2], Int32Array.from([0, 0, ...rows, ...cols, 0, 0]))], {}, name);
      }
      default:
        throw new Unsupported(`layer class ${l.class_name}`);
    }
  };

  const problems = new Map<string, string[]>();
  const record = (l: LayerConfig, e: unknown) => {
    if (!(e instanceof Unsupported)) throw e;
    const key = e.message;
    if (!problems.has(key)) problems.set(key, []);
    problems.get(key)!.push(String(l.config?.name ?? l.name));
  };
  const functional = !Array.isArray(cfg) && Array.isArray(cfg?.input_layers) && cls !== 'Sequential';
  if (!functional) {
    let x: string | undefined;
    for (const l of layers) {
      const name = String(l.config?.name ?? l.name);
      if (l.class_name === 'InputLayer') {
        x = placeholder(name, l.config.batch_input_shape ?? l.config.batch_shape);
        continue;
      }
      if (!x) x = placeholder('input', l.config.batch_input_shape ?? l.config.batch_shape);
      try {
        x = convertLayer(l, [x]);
      } catch (e) {
        record(l, e);
      }
    }
    if (!x) throw new LoadError(`${source}: the Sequential model has no layers`);
    const last = nodes[nodes.length - 1]!.name;
    sig.outputs.output = { name: `${last}:0`, dtype: 'DT_FLOAT' };
  } else {
    const c = cfg as { layers: LayerConfig[]; input_layers: unknown[]; output_layers: unknown[] };
    const ref = (r: unknown): string => {
      const [ln, ni, ti] = r as [string, number, number];
      const key = `${ln}:${ni ?? 0}:${ti ?? 0}`;
      const t = out.get(key);
      if (t === undefined) throw new Unsupported(`an input of an unconverted layer "${ln}"`);
      return t;
    };
    for (const l of c.layers) {
      const name = String(l.name ?? l.config?.name);
      if (l.class_name === 'InputLayer') {
        out.set(`${name}:0:0`, placeholder(name, l.config.batch_input_shape ?? l.config.batch_shape));
        continue;
      }
      const inbound = (l.inbound_nodes ?? []) as unknown[][];
      inbound.forEach((call, ni) => {
        try {
          // tfjs writes [[layer, node, tensor, kwargs], …]; newer Keras writes {args: […]}
          const list = Array.isArray(call) ? call : [];
          const inputs = list.map((r) => ref(r));
          out.set(`${name}:${ni}:0`, convertLayer({ ...l, config: { ...l.config, name: inbound.length > 1 ? `${name}_${ni}` : name } }, inputs));
        } catch (e) {
          record(l, e);
        }
      });
    }
    if (!problems.size) {
      c.output_layers.forEach((r, i) => {
        const t = ref(r);
        sig.outputs[c.output_layers.length > 1 ? `output_${i}` : 'output'] = { name: `${t}:0`, dtype: 'DT_FLOAT' };
      });
    }
  }
  if (problems.size) {
    throw new GraphError(`${source}: cannot convert the layers model: ${[...problems].map(([why, ls]) => `${why} (layer${ls.length > 1 ? 's' : ''} ${ls.map((x) => `"${x}"`).join(', ')})`).join('; ')}`);
  }
  return { graph: { node: nodes }, signature: sig };
}
