import { addDim } from '../dims.js';
import { elementwise } from '../rules.js';

/** Sub: numpy-broadcast a − b with a's type; known elements subtract (a symbol minus itself is 0). */
export const Sub = elementwise({ fn: ([a, b]) => (typeof b === 'number' ? addDim(a, -b) : a !== null && a === b ? 0 : null) });
