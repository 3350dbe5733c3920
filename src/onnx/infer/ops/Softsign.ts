import { sameAsInput } from '../rules.js';

/** Softsign: y = x / (1 + |x|): the type and shape of x. */
export const Softsign = sameAsInput(0);
