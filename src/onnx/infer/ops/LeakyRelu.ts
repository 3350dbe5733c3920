import { sameAsInput } from '../rules.js';

/** LeakyRelu: y = x < 0 ? alpha·x : x: the type and shape of x. */
export const LeakyRelu = sameAsInput(0);
