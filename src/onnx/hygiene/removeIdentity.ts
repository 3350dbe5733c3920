/**
 * `hygiene.removeIdentity`: removes `Identity` nodes and inference-mode `Dropout` nodes, making their readers read
 * the input directly.
 *
 * 1. `Identity(x)` -> x.
 * 2. `Dropout(x, ratio?, training_mode?)` with training_mode absent or a constant false (opset ≥ 12), or any
 *    Dropout from opset 7 to 11, or one with is_test = 1 before opset 7, and its mask output unread -> x.
 *
 * Graph output names never change: when the removed node's output is a graph output, its input takes over the
 * output's name — unless that input is a graph input, an initializer, another graph output or a value from an
 * enclosing graph, which would need renaming the model's interface; such nodes are left as they are (a graph
 * input wired straight to a graph output stays `Identity`). Subgraphs (If branches, Loop and Scan bodies) are
 * handled with the same rules.
 */
import { z } from 'zod';
import type { Pass, PassResult } from '../../pass.js';
import type { Graph, Model, Node } from '../ir.js';
import { constantOf, isOnnxDomain, opsetOf } from './constants.js';

/**
 * Options of `hygiene.removeIdentity`.
 *
 * @example
 * ```ts
 * removeIdentityOptions.parse({ dropout: false });
 * ```
 */
export const removeIdentityOptions = z.object({
  dropout: z.boolean().default(true).describe('Also remove Dropout nodes that are in inference mode and whose mask is unread'),
  subgraphs: z.boolean().default(true).describe('Also work inside subgraphs (If branches, Loop and Scan bodies)'),
});
export type RemoveIdentityOptions = z.input<typeof removeIdentityOptions>;

/** Why a Dropout is not a plain pass-through, or undefined when it is. */
function dropoutIsTraining(node: Node, opset: number): string | undefined {
  const mask = node.outputs[1];
  if (mask && (mask.uses.length || mask.isGraphOutput)) return `its mask output "${mask.name}" is read`;
  if (opset < 7) return node.getInt('is_test', 0) !== 0 ? undefined : 'is_test is 0 (training mode before opset 7)';
  const tm = node.inputs[2];
  if (!tm) return undefined;
  const t = constantOf(tm);
  if (!t || t.size !== 1) return `its training_mode input "${tm.name}" is not a constant scalar`;
  return Number(t.data()[0]) !== 0 ? 'training_mode is true' : undefined;
}

/** Removes the pass-through nodes of one graph (and, when asked, of its subgraphs); returns how many went. */
function clean(g: Graph, opset: number, options: z.output<typeof removeIdentityOptions>, notes: string[]): number {
  let removed = 0;
  for (const node of [...g.nodes]) {
    if (options.subgraphs) for (const s of node.subgraphs()) removed += clean(s, opset, options, notes);
    if (!isOnnxDomain(node)) continue;
    if (node.opType !== 'Identity' && !(options.dropout && node.opType === 'Dropout')) continue;
    const x = node.inputs[0];
    const y = node.outputs[0];
    if (!x || !y) continue;
    if (node.opType === 'Dropout') {
      const why = dropoutIsTraining(node, opset);
      if (why) {
        notes.push(`left ${node}: ${why}`);
        continue;
      }
    }
    if (y.isGraphOutput && (x.graph !== g || x.isGraphInput || x.isGraphOutput || x.initializer || !x.producer)) {
      notes.push(`left ${node}: it passes "${x.name}" (a graph input, initializer, graph output or outer value) to graph output "${y.name}", whose name must stay`);
      continue;
    }
    y.replaceAllUsesWith(x); // Identity(x) -> x; Dropout(x) in inference -> x
    g.removeNode(node);
    removed++;
  }
  return removed;
}

/**
 * The `hygiene.removeIdentity` pass; its cases are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { modified } = await runPass(removeIdentityPass, model, { dropout: true });
 * ```
 */
export const removeIdentityPass: Pass<typeof removeIdentityOptions> = {
  name: 'hygiene.removeIdentity',
  description: 'Removes Identity nodes and inference-mode Dropout nodes, rewiring their readers',
  inPlace: true,
  options: removeIdentityOptions,
  run(model: Model, options): PassResult {
    const notes: string[] = [];
    const removed = clean(model.graph, opsetOf(model), options, notes);
    if (removed) notes.unshift(`removed ${removed} Identity/Dropout node${removed === 1 ? '' : 's'}`);
    return { model, modified: removed > 0, notes };
  },
};
