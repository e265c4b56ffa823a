/** `tsalt pillar <target> [KEY]`: see grains.ts. */
import { show } from './grains.js';

export const run = (argv: string[]) => show('pillar', argv);
