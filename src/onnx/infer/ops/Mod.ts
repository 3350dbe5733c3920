import { elementwise } from '../rules.js';

/** Mod: numpy-broadcast a mod b with a's type. */
export const Mod = elementwise({ typeFrom: 0 });
