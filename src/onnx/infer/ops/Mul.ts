import { scaleDim } from '../dims.js';
import { elementwise } from '../rules.js';

/** Mul: numpy-broadcast a · b with a's type; known elements multiply (a symbol times 1 stays the symbol). */
export const Mul = elementwise({ fn: ([a, b]) => (typeof b === 'number' ? scaleDim(a, b) : typeof a === 'number' ? scaleDim(b, a) : null) });
