import { elementwise } from '../rules.js';

/** Less: numpy-broadcast a < b as bool; known elements compare. */
export const Less = elementwise({ dtype: 'bool', fn: ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? Number(a < b) : null) });
