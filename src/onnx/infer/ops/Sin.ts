import { sameAsInput } from '../rules.js';

/** Sin: y = sin x: the type and shape of x. */
export const Sin = sameAsInput(0);
