/**
 * `hygiene.removeUnused`: removes what nothing reads.
 *
 * 1. Nodes of the main graph whose outputs are all unread and not graph outputs, repeatedly (removing a reader can
 *    leave its producers unread). ONNX ops have no side effects, so nothing else keeps a node alive. Nodes inside
 *    subgraphs are kept: a Loop body's outputs are positional, and what a body needs is judged by its parent node.
 * 2. Initializers that nothing reads, in the main graph and in subgraphs (reads from nested subgraphs count, since
 *    a subgraph may read an enclosing graph's initializer by name). From IR version 4 on, an initializer that is
 *    also a graph input is part of the model's interface and stays.
 * 3. value_info entries of removed values (the IR drops them with the value) and stale ones that name a value
 *    nothing produces, in every graph.
 *
 * Unused graph inputs stay: they are the model's interface.
 */
import { z } from 'zod';
import type { Pass, PassResult } from '../../pass.js';
import type { Graph, Model, Value } from '../ir.js';
import { irVersionOf } from './constants.js';

/**
 * Options of `hygiene.removeUnused`.
 *
 * @example
 * ```ts
 * removeUnusedOptions.parse({ staleValueInfo: false });
 * ```
 */
export const removeUnusedOptions = z.object({
  initializers: z.boolean().default(true).describe('Also remove initializers that nothing reads'),
  staleValueInfo: z.boolean().default(true).describe('Also drop value_info entries that name a value nothing produces'),
});
export type RemoveUnusedOptions = z.input<typeof removeUnusedOptions>;

const dead = (v: Value | null) => !v || (!v.uses.length && !v.isGraphOutput);

/** Every graph of the model: the main graph and all subgraphs, outermost first. */
function* graphs(g: Graph): Generator<Graph> {
  yield g;
  for (const n of g.nodes) for (const s of n.subgraphs()) yield* graphs(s);
}

/**
 * The `hygiene.removeUnused` pass; its cases are listed at the top of this file.
 *
 * @example
 * ```ts
 * const { modified, notes } = await runPass(removeUnusedPass, model);
 * ```
 */
export const removeUnusedPass: Pass<typeof removeUnusedOptions> = {
  name: 'hygiene.removeUnused',
  description: 'Removes unread nodes, unread initializers and stale value_info entries',
  inPlace: true,
  options: removeUnusedOptions,
  run(model: Model, options): PassResult {
    const g = model.graph;
    let nodes = 0;
    // in topological order, one backward sweep removes whole dead chains; repeat in case the order is not
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = g.nodes.length - 1; i >= 0; i--) {
        const n = g.nodes[i]!;
        if (n.outputs.every(dead)) {
          // a dead If / Loop / Scan: its subgraphs' reads of outer values go with it, so their producers can go too
          for (const s of n.subgraphs()) for (const inner of s.allNodes()) inner.setInputs([]);
          g.removeNode(n); // case 1
          nodes++;
          changed = true;
        }
      }
    }
    let initializers = 0;
    let valueInfo = 0;
    for (const sg of graphs(g)) {
      if (options.initializers) {
        for (const v of [...sg.initializers.values()]) {
          if (v.uses.length || v.isGraphOutput || (v.isGraphInput && irVersionOf(sg) >= 4)) continue;
          sg.removeInitializer(v); // case 2
          initializers++;
        }
      }
      if (options.staleValueInfo) {
        for (let i = sg.valueInfo.length - 1; i >= 0; i--) {
          const v = sg.valueInfo[i]!;
          const live = v.producer || v.initializer || v.isGraphInput || v.uses.length || v.isGraphOutput || sg.values.get(v.name) !== v;
          if (live) continue;
          sg.valueInfo.splice(i, 1); // case 3: describes a value nothing produces
          valueInfo++;
        }
      }
    }
    const notes: string[] = [];
    if (nodes) notes.push(`removed ${nodes} unread node${nodes === 1 ? '' : 's'}`);
    if (initializers) notes.push(`removed ${initializers} unread initializer${initializers === 1 ? '' : 's'}`);
    if (valueInfo) notes.push(`dropped ${valueInfo} stale value_info entr${valueInfo === 1 ? 'y' : 'ies'}`);
    return { model, modified: nodes + initializers + valueInfo > 0, notes };
  },
};
