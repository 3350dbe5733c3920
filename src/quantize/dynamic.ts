/**
 * `quantize.dynamic`: int8 weights stored in the model; activations quantized to uint8 at run time, per tensor, by
 * `DynamicQuantizeLinear` (whose range is the tensor's own min/max widened to include 0), so no calibration is needed.
 *
 * 1. `MatMul(A, W)` with W a constant [K, N] ->
 *    `Mul(Cast<float>(MatMulInteger(a, Wq, a_zp, W_zp)), Mul(a_scale, W_scale))` where `a, a_scale, a_zp =
 *    DynamicQuantizeLinear(A)`.
 * 2. `Gemm(A, W, C)` (transA = 0) -> case 1 on W as [K, N] (transposed when transB = 1, times alpha), then
 *    `Add(·, beta·C)` when C is given.
 * 3. `Conv(X, W, B)` -> `Mul(Cast<float>(ConvInteger(x, Wq, x_zp, W_zp)), Mul(x_scale, W_scale))`, with W_scale
 *    shaped [C_out, 1, …] to broadcast over the output, then `Add(·, B as [C_out, 1, …])` when B is given; the
 *    ConvInteger keeps the Conv's attributes.
 *
 * Why this shape (onnxruntime 1.30, CPU):
 * - At graph optimization level `extended`/`all` onnxruntime fuses case 1's `MatMulInteger → Cast → Mul(·, Mul(a_scale,
 *   W_scale))` (and a following `Add` of a constant 1-D bias, as in case 2) into `MatMulIntegerToFloat`, and that
 *   with the `DynamicQuantizeLinear` in front into `DynamicQuantizeMatMul` — but only when each output of the
 *   DynamicQuantizeLinear has exactly one reader. So every node gets its own DynamicQuantizeLinear, even when two
 *   nodes read the same activation, and `a_scale` comes first in the scale product (the fusion takes input 0 of
 *   that Mul as A's scale).
 * - Weights are symmetric (zero point 0 for int8, 128 for uint8): onnxruntime's ConvInteger accepts only a
 *   per-tensor weight zero point, so per-channel scales go into the float Mul after the integer op, which both
 *   MatMulIntegerToFloat and DynamicQuantizeMatMul accept as a per-column scale ([N]). ConvInteger runs uint8
 *   activations with int8 or uint8 weights; `weightType: 'uint8'` stores int8 + 128.
 * - `reduceRange` keeps weights in [-63, 63] (7 bits): x86 CPUs without VNNI sum pairs of uint8·int8 products in
 *   int16 (vpmaddubsw), which saturates with full-range weights. CPUs with AVX-VNNI / AVX512-VNNI do not need it.
 *   Measured on an AVX2-only EPYC (fmnist MLP, SQNR of the logits against float): int8 per-tensor 50 dB, int8
 *   per-channel 38 dB (every channel uses the full range, so more pairs saturate), int8 per-channel with
 *   reduceRange 46 dB, uint8 per-channel 51 dB. Hence the defaults: int8, per-tensor (also onnxruntime's).
 * - Conv is opt-in (`opTypes`): onnxruntime's ConvInteger has no fused or blocked (NCHWc) kernel, and with the
 *   DynamicQuantizeLinear/Cast/Mul/Add around it each Conv of the fmnist CNN ran 3–4× slower than float at batch 32.
 *
 * Only the main graph is rewritten. The input model is not changed: the result is a copy. A weight read by several
 * quantized nodes is quantized once; float weights no node reads any more are removed.
 */
import { z } from 'zod';
import { PassError } from '../errors.js';
import { addConstant, constantOf, dropUnreadConstants, isOnnxDomain } from '../onnx/hygiene/constants.js';
import { attr, type Graph, type Model, type Value } from '../onnx/ir.js';
import { Tensor } from '../onnx/tensor.js';
import { parseOptions } from '../pass.js';
import { ensureOpset } from '../onnx/opset.js';
import type { NodeReport, QuantizeOutput } from './types.js';
import {
  LINEAR_OPS,
  addBefore,
  cloneModel,
  floats,
  inferQuietly,
  linearSite,
  makeReport,
  quantizeInt8,
  replaceNode,
  transpose2d,
  type LinearSite,
} from './weightOnly.js';

/**
 * Options of `quantizeDynamic` (`quantize.dynamic`), declared once: defaults, validation and descriptions.
 *
 * @example
 * ```ts
 * dynamicOptions.parse({ opTypes: ['MatMul', 'Gemm'], exclude: ['/classifier/*'] });
 * ```
 */
export const dynamicOptions = z.object({
  perChannel: z
    .boolean()
    .default(false)
    .describe(
      'One weight scale per output channel (applied in float after the integer op) instead of one per tensor; with int8 weights on x86 CPUs without VNNI pair it with reduceRange',
    ),
  weightType: z
    .enum(['int8', 'uint8'])
    .default('int8')
    .describe('Weight element type; weights are symmetric either way (uint8 stores int8 + 128 with zero point 128)'),
  opTypes: z
    .array(z.enum(LINEAR_OPS))
    .min(1)
    .default(['Gemm', 'MatMul'])
    .describe('Op types to quantize: MatMul and Gemm become MatMulInteger; Conv (opt-in: slower than float in onnxruntime 1.30) becomes ConvInteger'),
  exclude: z.array(z.string().min(1)).default([]).describe('Node names or op types to leave in float; in names "*" and "?" act as wildcards'),
  reduceRange: z
    .boolean()
    .default(false)
    .describe('Quantize weights to 7 bits ([-63, 63]) to avoid int16 saturation on x86 CPUs without VNNI'),
});
export type DynamicOptions = z.input<typeof dynamicOptions>;
type Options = z.output<typeof dynamicOptions>;

/** A quantized weight in the layout the integer op reads, with its scale and zero point. */
interface QuantizedWeight {
  q: Value;
  scale: Value;
  zeroPoint: Value;
}

/**
 * Dynamic quantization (see the top of this file): MatMul/Gemm -> DynamicQuantizeLinear + MatMulInteger + Cast + Mul
 * (+ Add), Conv -> DynamicQuantizeLinear + ConvInteger + Cast + Mul (+ Add). Returns a new model and a report; the
 * input model is not changed. Throws an OptionsError for invalid options, and a PassError when the model's opset is
 * below 11 (DynamicQuantizeLinear) and cannot safely be raised.
 *
 * @example
 * ```ts
 * const { model: q, report } = quantizeDynamic(await loadModel('fixtures/fmnist-mlp.onnx'));
 * report.quantizedByOp; // { Gemm: 2 }
 * const runner = await Runner.create(q); // onnxruntime fuses each Gemm into DynamicQuantizeMatMul
 * quantizeDynamic(cnn, { opTypes: ['Conv', 'Gemm'], perChannel: true, reduceRange: true });
 * ```
 */
export function quantizeDynamic(model: Model, options: DynamicOptions = {}): QuantizeOutput {
  const o = parseOptions(dynamicOptions, options, 'quantize.dynamic');
  const out = cloneModel(model);
  inferQuietly(out);
  const g = out.graph;
  const notes: string[] = [];
  const rows: NodeReport[] = [];
  const sites: LinearSite[] = [];
  for (const node of g.nodes) {
    if (!isOnnxDomain(node) || !(LINEAR_OPS as readonly string[]).includes(node.opType)) continue;
    const s = linearSite(node, o.opTypes, o.exclude, (site) => {
      if (site.op !== 'Conv' && site.w.dims.length !== 2) return { reason: 'unsupported-shape', detail: `its weight has dims ${JSON.stringify(site.w.dims)}; MatMulInteger weights are handled as 2-D` };
      const bias = site.op === 'MatMul' ? undefined : node.inputs[2];
      if (site.op === 'Conv' && bias && !constantOf(bias)) return { reason: 'not-constant-weight', detail: `its bias "${bias.name}" is not a constant` };
      const dtype = constantOf(bias)?.dtype;
      if (dtype && dtype !== 'float32') return { reason: 'unsupported-shape', detail: `its bias "${bias!.name}" is ${dtype}; only float32 is handled` };
      if (site.op === 'Gemm' && bias && node.getFloat('beta', 1) !== 1 && !constantOf(bias)) {
        return { reason: 'unsupported-shape', detail: 'Gemm with beta ≠ 1 and a C that is not constant' };
      }
      return undefined;
    });
    if ('quantized' in s) rows.push(s);
    else sites.push(s);
  }
  if (sites.length) {
    const why = ensureOpset(out, 11, notes);
    if (why) throw new PassError(`quantize.dynamic needs DynamicQuantizeLinear (opset 11), but ${why}`);
    const cache = new Map<string, QuantizedWeight>();
    const originals = new Set<Value>();
    for (const site of sites) {
      rewrite(g, site, o, cache, originals);
      const integerOp = site.op === 'Conv' ? 'ConvInteger' : 'MatMulInteger';
      rows.push({
        node: site.node.name,
        opType: site.op,
        quantized: true,
        detail: `DynamicQuantizeLinear + ${integerOp}, weights ${o.weightType}${o.reduceRange ? ' (7-bit range)' : ''} ${o.perChannel ? 'per-channel' : 'per-tensor'}`,
      });
    }
    dropUnreadConstants(originals);
    notes.push('each quantized node has its own DynamicQuantizeLinear, so that onnxruntime can fuse it into DynamicQuantizeMatMul');
  }
  return { model: out, report: makeReport('dynamic', rows, notes) };
}

/** Quantizes a site's weight (once per weight, layout and alpha) into the layout its integer op reads. */
function quantizeWeight(g: Graph, site: LinearSite, o: Options, cache: Map<string, QuantizedWeight>): QuantizedWeight {
  const { node, weight, w } = site;
  const transB = site.op === 'Gemm' && node.getInt('transB', 0) !== 0;
  const alpha = site.op === 'Gemm' ? node.getFloat('alpha', 1) : 1;
  const key = `${weight.name}|${transB}|${alpha}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let data = floats(w);
  let dims = [...w.dims];
  if (transB) {
    data = transpose2d(data, dims[0]!, dims[1]!); // [N, K] -> [K, N]
    dims = [dims[1]!, dims[0]!];
  }
  if (alpha !== 1) data = data.map((v) => v * alpha); // Gemm's alpha folded into W
  const axis = !o.perChannel ? undefined : site.op === 'Conv' ? 0 : 1;
  const q = quantizeInt8(data, dims, axis, { name: weight.name, reduceRange: o.reduceRange, unsigned: o.weightType === 'uint8' });
  // the scale multiplies the integer op's output: [N] for MatMul, [C_out, 1, …] for Conv's [batch, C_out, …]
  const scaleDims = axis === undefined ? [] : site.op === 'Conv' ? [dims[0]!, ...dims.slice(2).map(() => 1)] : [dims[1]!];
  const qw: QuantizedWeight = {
    q: addConstant(g, `${weight.name}_quantized`, Tensor.from(o.weightType, dims, q.data)),
    scale: addConstant(g, `${weight.name}_scale`, Tensor.from('float32', scaleDims, q.scales)),
    zeroPoint: addConstant(g, `${weight.name}_zero_point`, Tensor.from(o.weightType, [], [q.zeroPoint])),
  };
  cache.set(key, qw);
  return qw;
}

/** Cases 1–3 of the top of this file. */
function rewrite(g: Graph, site: LinearSite, o: Options, cache: Map<string, QuantizedWeight>, originals: Set<Value>): void {
  const { node, weight } = site;
  const x = node.input(0);
  const qw = quantizeWeight(g, site, o, cache);
  originals.add(weight);
  const base = node.name || site.op;
  const dql = addBefore(g, node, {
    opType: 'DynamicQuantizeLinear',
    base: `${base}_DynamicQuantizeLinear`,
    inputs: [x],
    outputs: [`${x.name}_quantized`, `${x.name}_scale`, `${x.name}_zero_point`],
  });
  const [xq, xScale, xZero] = [dql.output(0), dql.output(1), dql.output(2)];
  const conv = site.op === 'Conv';
  const integer = addBefore(g, node, {
    opType: conv ? 'ConvInteger' : 'MatMulInteger',
    base: `${base}_${conv ? 'ConvInteger' : 'MatMulInteger'}`,
    inputs: [xq, qw.q, xZero, qw.zeroPoint],
    attributes: conv ? Object.fromEntries(node.attributes) : {},
  });
  const cast = addBefore(g, node, { opType: 'Cast', base: `${base}_Cast`, inputs: [integer.output()], attributes: { to: attr.int(1) } });
  // a_scale first: onnxruntime's fusion reads input 0 of this Mul as A's scale
  const scale = addBefore(g, node, { opType: 'Mul', base: `${base}_scales_Mul`, inputs: [xScale, qw.scale] });
  let y = addBefore(g, node, { opType: 'Mul', base: `${base}_output_Mul`, inputs: [cast.output(), scale.output()] }).output();
  const bias = conv || site.op === 'Gemm' ? node.inputs[2] : undefined;
  if (bias) {
    let b: Value = bias;
    const t = constantOf(bias);
    if (conv) {
      // B [C_out] -> [C_out, 1, …] to broadcast over [batch, C_out, spatial…]
      const rank = site.w.dims.length;
      b = addConstant(g, `${bias.name}_reshaped`, Tensor.from('float32', [t!.size, ...Array<number>(rank - 2).fill(1)], floats(t!).slice()));
      originals.add(bias);
    } else if (node.getFloat('beta', 1) !== 1) {
      const beta = node.getFloat('beta', 1);
      b = addConstant(g, `${bias.name}_times_beta`, Tensor.from('float32', t!.dims, floats(t!).map((v) => v * beta)));
      originals.add(bias);
    }
    y = addBefore(g, node, { opType: 'Add', base: `${base}_bias_Add`, inputs: [y, b] }).output();
  }
  replaceNode(node, y);
}
