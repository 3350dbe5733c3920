import { elementwise } from '../rules.js';

/** Pow: numpy-broadcast x^y with the type of the base x. */
export const Pow = elementwise({ typeFrom: 0 });
