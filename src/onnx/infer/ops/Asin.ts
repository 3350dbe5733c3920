import { sameAsInput } from '../rules.js';

/** Asin: y = asin x: the type and shape of input 0. */
export const Asin = sameAsInput(0);
