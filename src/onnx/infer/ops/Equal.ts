import { elementwise } from '../rules.js';

/** Equal: numpy-broadcast a == b as bool; known elements compare (a symbol equals itself). */
export const Equal = elementwise({
  dtype: 'bool',
  fn: ([a, b]) => (typeof a === 'number' && typeof b === 'number' ? Number(a === b) : a !== null && a === b ? 1 : null),
});
