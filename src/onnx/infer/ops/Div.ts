import { elementwise, isInteger } from '../rules.js';

/** Div: numpy-broadcast a / b with a's type; known elements divide (integers truncate; a symbol over 1 stays). */
export const Div = elementwise({
  fn: ([a, b], t) => {
    if (b === 1) return a;
    if (typeof a !== 'number' || typeof b !== 'number' || b === 0) return null;
    return isInteger(t) ? Math.trunc(a / b) : a / b;
  },
});
