import { elementwise } from '../rules.js';

/** Greater: numpy-broadcast a > b as bool; known elements compare. */
export const Greater = elementwise({ dtype: 'bool', fn: ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? Number(a > b) : null) });
