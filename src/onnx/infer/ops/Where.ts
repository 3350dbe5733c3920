import { elementwise } from '../rules.js';

/** Where: numpy broadcast of condition, x and y, with x's type; known elements are selected. */
export const Where = elementwise({
  typeFrom: 1,
  fn: ([c, x, y]) => (typeof c === 'number' ? (c ? x : y) : x === y ? x : null),
});
