import { elementwise } from '../rules.js';

/** Neg: y = −x, the type and shape of x; known elements are negated. */
export const Neg = elementwise({ fn: ([a]) => (typeof a === 'number' ? -a : null) });
