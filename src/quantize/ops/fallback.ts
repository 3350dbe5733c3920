/**
 * The explicit fallback for ops without an integer kernel in onnxruntime: the node stays float. Its inputs that
 * carry a Q/DQ pair are read through the DequantizeLinear (`DQ(x) -> op`), and its outputs stay float until a
 * quantized reader puts a new Q/DQ pair on them.
 */
import type { OpHandler } from './table.js';

/**
 * The fallback handler.
 *
 * @example
 * ```ts
 * staticHandlerFor('Erf', '') === fallback; // true: Erf stays float
 * ```
 */
export const fallback: OpHandler = {
  opType: '*',
  plan: (ctx) =>
    ctx.float(
      'no-integer-kernel',
      `${ctx.node.domain ? `${ctx.node.domain}.` : ''}${ctx.node.opType} has no integer kernel in onnxruntime's QDQ fusions: its inputs are dequantized and it runs in float`,
    ),
};
