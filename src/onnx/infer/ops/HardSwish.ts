import { sameAsInput } from '../rules.js';

/** HardSwish: y = x · HardSigmoid(x) with alpha 1/6, beta 1/2: the type and shape of x. */
export const HardSwish = sameAsInput(0);
