import { elementwise } from '../rules.js';

/** Floor: y = ⌊x⌋, the type and shape of x; known elements are floored (shape arithmetic in float uses it). */
export const Floor = elementwise({ fn: ([a]) => (typeof a === 'number' ? Math.floor(a) : null) });
