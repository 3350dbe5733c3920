import { sameAsInput } from '../rules.js';

/** Exp: y = e^x: the type and shape of x. */
export const Exp = sameAsInput(0);
