import { elementwise } from '../rules.js';

/** LessOrEqual: numpy-broadcast a <= b as bool; known elements compare. */
export const LessOrEqual = elementwise({ dtype: 'bool', fn: ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? Number(a <= b) : null) });
