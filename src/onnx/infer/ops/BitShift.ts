import { elementwise } from '../rules.js';

/** BitShift: numpy-broadcast x << y or x >> y, with x's type. */
export const BitShift = elementwise({ typeFrom: 0 });
