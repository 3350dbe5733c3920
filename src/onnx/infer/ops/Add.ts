import { addDim } from '../dims.js';
import { elementwise } from '../rules.js';

/** Add: numpy-broadcast a + b with a's type; known elements add (a symbol plus 0 stays the symbol). */
export const Add = elementwise({ fn: ([a, b]) => (typeof b === 'number' ? addDim(a, b) : typeof a === 'number' ? addDim(b, a) : null) });
