import { elementwise } from '../rules.js';

/** Min: numpy broadcast of every input, the first one's type; known elements take the smallest. */
export const Min = elementwise({ fn: (args) => (args.every((a) => typeof a === 'number') ? Math.min(...(args as number[])) : null) });
