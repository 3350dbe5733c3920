import { sameAsInput } from '../rules.js';

/** Not: y = ¬x: the type (bool) and shape of x. */
export const Not = sameAsInput(0);
