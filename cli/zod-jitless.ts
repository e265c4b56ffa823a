/**
 * Imported first by the daemon-only bundle and the `tsalt local` bundle: zod compiles a parser
 * per object schema with `new Function` at its first parse, code an idle agent keeps for its
 * life to parse a few messages a minute, and that a masterless run (a new process each time,
 * each schema used a few times) compiles again at every start: 11 ms of CPU per W54 run.
 * zod reads this setting as each schema is built, so it comes before them.
 * The daemon's and the engine's schemas are zod/mini ones, and zod/mini loads no messages:
 * English is set here (engine/states/define.ts sets it too, for the job worker and unbundled runs).
 */
import * as z from 'zod/mini';

z.config({ jitless: true, ...z.locales.en() });
