import { sameAsInput } from '../rules.js';

/** HardSigmoid: y = max(0, min(1, alpha·x + beta)): the type and shape of x. */
export const HardSigmoid = sameAsInput(0);
