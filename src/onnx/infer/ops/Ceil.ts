import { elementwise } from '../rules.js';

/** Ceil: y = ⌈x⌉, the type and shape of x; known elements are rounded up. */
export const Ceil = elementwise({ fn: ([a]) => (typeof a === 'number' ? Math.ceil(a) : null) });
