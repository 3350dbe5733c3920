import { elementwise } from '../rules.js';

/** Max: numpy broadcast of every input, the first one's type; known elements take the largest. */
export const Max = elementwise({ fn: (args) => (args.every((a) => typeof a === 'number') ? Math.max(...(args as number[])) : null) });
