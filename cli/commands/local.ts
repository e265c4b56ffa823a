/**
 * `tsalt local apply|show [SLS ...]`: the engine on this machine, no master (Salt's salt-call --local).
 */
import { parseCommand, UsageError } from '../args.js';
import { parseSaltArgs, type SaltArgs } from '../salt-args.js';
import path from 'node:path';
import fs from 'node:fs';
import { forTerminal } from '../../core/terminal.js';
import { dumpSaltYaml } from '../../core/salt-yaml.js';

const HELP = `usage: tsalt local apply [SLS ...] [test=True] [pillar='{...}'] [options]    converge this machine
       tsalt local show  [SLS ...] [options]    print the compiled low states, touch nothing

  pillar='{"app": {"version": "1.2"}}'   merged over the rendered pillar for this run (Salt's pillar=)

options:
  --states DIR        state tree (default /srv/salt)
  --pillar DIR        pillar tree (default /srv/pillar; optional)
  --id ID             this host's id (default: hostname)
  --grains-file FILE  static grains (default /etc/tsalt/grains)
  --test              change nothing; report what would change (result None)
  --json              one JSON object instead of the highstate text
  --root DIR          manage file paths under DIR (demos, tests)
  --terse             hide states that succeeded without changes
  --no-color          never colour the output

Without SLS names, applies the highstate: what top.sls gives this id.
Exit: 0 all succeeded, 2 a state failed, 1 the tree did not compile.`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(
    argv,
    {
      states: { type: 'string', default: '/srv/salt' },
      pillar: { type: 'string', default: '/srv/pillar' },
      id: { type: 'string' },
      'grains-file': { type: 'string', default: '/etc/tsalt/grains' },
      test: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      root: { type: 'string' },
      terse: { type: 'boolean', default: false },
      'no-color': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    HELP,
  );
  const { values: o, positionals } = parsed;
  const [action, ...words] = positionals;
  let salt: SaltArgs;
  try {
    salt = parseSaltArgs(words); // `test=True`, `pillar='{...}'`, `a,b` as Salt takes them
  } catch (e) {
    throw new UsageError((e as Error).message, HELP);
  }
  const sls = salt.sls;
  if (o.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (action !== 'apply' && action !== 'show') throw new UsageError(action ? `unknown action '${action}'` : 'apply or show?', HELP);
  const { LocalTree } = await import('../../engine/tree/local.js');
  const { coreGrains, loadGrainsFile } = await import('../../engine/grains/core.js');
  const { CompileError } = await import('../../engine/compile/errors.js');
  const engine = await import('../../engine/engine.js');

  if (!fs.existsSync(o.states)) {
    process.stderr.write(`tsalt local: state tree ${o.states} does not exist (--states DIR)\n`);
    return 1;
  }
  try {
    const grains = { ...coreGrains(), ...loadGrainsFile(o['grains-file']) };
    const id = o.id ?? String(grains.id);
    grains.id = id;
    let pillar: Record<string, unknown> = {};
    if (fs.existsSync(o.pillar)) {
      const { renderPillar } = await import('../../engine/compile/pillar.js');
      pillar = await renderPillar(new LocalTree(path.resolve(o.pillar)), id, grains);
    }
    if (salt.pillar) {
      const { deepMerge } = await import('../../engine/render/salt-functions.js');
      pillar = deepMerge(pillar, salt.pillar);
    }
    const req = {
      tree: new LocalTree(path.resolve(o.states)),
      id,
      grains,
      pillar,
      sls,
      test: o.test || salt.test === true,
      root: o.root,
      // the pillar tree is on this machine already; pillar='{...}' from the command line is not stored
      parsedYamlCache: !salt.pillar,
    };
    if (action === 'show') {
      const states = await engine.compile(req);
      const rows = states.map((s) => ({
        id: s.id,
        function: `${s.state}.${s.fun}`,
        name: s.name,
        sls: s.sls,
        args: s.args,
        requisites: s.deps.map((d) => ({ kind: d.kind, target: states.find((x) => x.key === d.target)?.id ?? d.target })),
        ...(s.order !== undefined ? { order: s.order } : {}),
      }));
      if (o.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      else {
        process.stdout.write(dumpSaltYaml(rows, { noRefs: true }));
      }
      return 0;
    }
    const color = !o['no-color'] && !o.json && process.stdout.isTTY === true;
    // Ctrl-C (or SIGTERM) stops the run between states and terminates the running program,
    // then prints what ran and what did not; a second Ctrl-C leaves at once
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      if (stop.signal.aborted) process.exit(130);
      process.stderr.write(`tsalt: ${sig}: stopping the run (again to leave at once)\n`);
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let report;
    try {
      report = await engine.apply({ ...req, signal: stop.signal, onlyRunInProcess: true });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const { formatHighstate, reportToJson } = await import('../../engine/run/output.js');
    if (o.json) process.stdout.write(JSON.stringify(reportToJson(report), null, 2) + '\n');
    else {
      process.stdout.write(formatHighstate(forTerminal(report), { color, terse: o.terse }) + '\n');
    }
    return report.counts.failed ? 2 : 0;
  } catch (e) {
    if (e instanceof CompileError) {
      const n = e.errors.length;
      process.stderr.write(`tsalt: the state tree did not compile (${n} error${n > 1 ? 's' : ''}); nothing was applied:\n`);
      process.stderr.write(e.message.split('\n').map((l) => `  - ${l}`).join('\n') + '\n');
      return 1;
    }
    process.stderr.write(`tsalt local: ${(e as Error).message}\n`);
    return 1;
  }
}
