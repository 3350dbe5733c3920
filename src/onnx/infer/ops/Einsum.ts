import type { Dim } from '../../ir.js';
import type { Handler } from '../context.js';
import { broadcastShapes, unifyDim } from '../dims.js';

/** Einsum: each output letter takes the size its operands agree on, "..." the broadcast of the dims it covers; implicit output: "..." then once-used letters, sorted. */
export const Einsum: Handler = (ctx) => {
  const equation = ctx.node.getString('equation').replace(/\s/g, '');
  const [lhs, rhs] = equation.split('->');
  const terms = lhs.split(',');
  const elemType = ctx.elemType(0);
  if (terms.length !== ctx.node.inputs.length) ctx.fail(`equation "${equation}" has ${terms.length} operands but the node has ${ctx.node.inputs.length} inputs`);
  const sizes = new Map<string, Dim>();
  let ellipsis: Dim[] = [];
  for (const [k, term] of terms.entries()) {
    const shape = ctx.shape(k);
    if (!shape) return [{ elemType }];
    const [head, tail = ''] = term.split('...');
    const hasEllipsis = term.includes('...');
    const middle = shape.length - head.length - tail.length;
    if (middle < 0 || (!hasEllipsis && middle !== 0)) ctx.fail(`operand "${term}" does not fit ${ctx.describe(k)}`);
    const letters: [string, Dim][] = [...[...head].map((c, i): [string, Dim] => [c, shape[i]]), ...[...tail].map((c, i): [string, Dim] => [c, shape[head.length + middle + i]])];
    for (const [c, d] of letters) {
      const u = sizes.has(c) ? unifyDim(sizes.get(c)!, d) : d;
      sizes.set(c, u === undefined ? ctx.fail(`letter "${c}" is ${sizes.get(c)} in one operand but ${d} in ${ctx.describe(k)}`) : u);
    }
    const b = broadcastShapes([ellipsis, shape.slice(head.length, head.length + middle)]);
    if ('conflict' in b) return ctx.fail(`the dims "..." stands for do not broadcast in ${ctx.describe(k)}`);
    ellipsis = b.shape;
  }
  const once = [...sizes.keys()].filter((c) => [...lhs].filter((x) => x === c).length === 1).sort();
  const output = rhs ?? (lhs.includes('...') ? '...' : '') + once.join('');
  const [head, tail = ''] = output.split('...');
  const dims = (s: string) => [...s].map((c) => (sizes.has(c) ? sizes.get(c)! : ctx.fail(`output letter "${c}" appears in no operand`)));
  return [{ elemType, shape: output.includes('...') ? [...dims(head), ...ellipsis, ...dims(tail)] : dims(head) }];
};
