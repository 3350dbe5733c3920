import { sameAsInput } from '../rules.js';

/** PRelu: y = x < 0 ? slope·x : x with slope broadcast to x: the type and shape of x. */
export const PRelu = sameAsInput(0);
