import { sameAsInput } from '../rules.js';

/** LpNormalization: y = x / ‖x‖p along axis: the type and shape of x. */
export const LpNormalization = sameAsInput(0);
