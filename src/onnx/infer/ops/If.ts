import type { Dim, Value } from '../../ir.js';
import type { Handler, Inferred } from '../context.js';
import { typeOf } from '../context.js';

/** If: each output is the matching output of both branches (inferred first), dims kept where the branches agree. */
export const If: Handler = (ctx) => {
  const then = ctx.node.getAttr('then_branch');
  const otherwise = ctx.node.getAttr('else_branch');
  if (then?.type !== 'graph' || otherwise?.type !== 'graph') return [];
  return ctx.node.outputs.map((_, i) => merge(then.value.outputs[i], otherwise.value.outputs[i]));
};

function merge(a: Value | undefined, b: Value | undefined): Inferred | undefined {
  const ta = a && typeOf(a);
  const tb = b && typeOf(b);
  if (!ta || !tb || ta.elemType !== tb.elemType) return undefined;
  const same = ta.shape && tb.shape && ta.shape.length === tb.shape.length;
  return { elemType: ta.elemType, shape: same ? ta.shape!.map((d, i): Dim => (d === tb.shape![i] ? d : null)) : undefined };
}
