import { elementwise } from '../rules.js';

/** GreaterOrEqual: numpy-broadcast a >= b as bool; known elements compare. */
export const GreaterOrEqual = elementwise({ dtype: 'bool', fn: ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? Number(a >= b) : null) });
