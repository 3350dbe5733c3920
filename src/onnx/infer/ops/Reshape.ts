import type { Dim } from '../../ir.js';
import type { Handler, InferContext } from '../context.js';
import { formatShape, productDim } from '../dims.js';

/** Reshape: the target (input 1 from opset 5, attribute before); 0 copies x's dim unless allowzero, one −1 takes the rest of the count, symbols cancelling. */
export const Reshape: Handler = (ctx) => {
  const x = ctx.type(0);
  const elemType = x?.elemType;
  const target = ctx.opset >= 5 ? ctx.elements(1) : ctx.node.getInts('shape');
  if (!target) return [{ elemType }];
  const input = x?.shape;
  const allowZero = ctx.node.getInt('allowzero', 0) !== 0;
  const out = target.map((d, i): Dim => {
    if (d !== 0 || allowZero) return d;
    if (input && i >= input.length) ctx.fail(`target ${formatShape(target)} copies dimension ${i} (a 0) but ${ctx.describe(0)} has rank ${input.length}`);
    return input ? input[i] : null;
  });
  if (out.some((d) => typeof d === 'number' && d < -1) || out.filter((d) => d === -1).length > 1) ctx.fail(`invalid target shape ${formatShape(target)}`);
  const minus = out.indexOf(-1);
  if (minus >= 0) out[minus] = input ? remainder(ctx, input, out.filter((_, i) => i !== minus), target) : null;
  const inCount = input && productDim(input);
  const outCount = productDim(out);
  if (typeof inCount === 'number' && typeof outCount === 'number' && inCount !== outCount) {
    ctx.fail(`cannot reshape ${ctx.describe(0)} (${inCount} elements) to ${formatShape(out)} (${outCount} elements)`);
  }
  return [{ elemType, shape: out, value: out.length <= 1 ? ctx.value(0) : undefined }];
};

/** The element count of `input` divided by that of `known`, cancelling symbols that appear in both. */
function remainder(ctx: InferContext, input: readonly Dim[], known: readonly Dim[], target: readonly Dim[]): Dim {
  if (input.includes(null) || known.includes(null)) return null;
  let num = 1;
  let den = 1;
  const symbols: string[] = [];
  for (const d of input) typeof d === 'number' ? (num *= d) : symbols.push(d!);
  for (const d of known) {
    if (typeof d === 'number') den *= d;
    else if (symbols.includes(d!)) symbols.splice(symbols.indexOf(d!), 1);
    else return null;
  }
  if (symbols.length === 1 && num === den) return symbols[0];
  if (symbols.length || den === 0) return null;
  if (num % den !== 0) ctx.fail(`cannot reshape ${ctx.describe(0)} (${num} elements) to ${formatShape(target)}: ${num} is not a multiple of ${den}`);
  return num / den;
}
