/**
 * Imported first by the daemon-only bundle: zod compiles a parser per object schema with
 * `new Function` at its first parse, code an idle agent keeps for its life to parse a few
 * messages a minute. zod reads this setting as each schema is built, so it comes before them.
 */
import { z } from 'zod';

z.config({ jitless: true });
