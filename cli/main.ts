/**
 * `tsalt <command>`: dispatch to cli/commands/<command>.ts, loaded lazily so each command pays
 * only for what it uses (start-up time is part of the speed budget).
 */
import { runCommand, type CommandModule } from './run-command.js';

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  local: { summary: 'apply or show states on this machine, no master (local apply|show)', load: () => import('./commands/local.js') },
  master: { summary: 'run the master (agents over mutual TLS, jobs in SQLite, CLI socket)', load: () => import('./commands/master.js') },
  agent: { summary: 'run the agent: connect to the master, run the jobs it sends', load: () => import('./commands/agent.js') },
  apply: { summary: 'apply states on targeted agents (apply <target> [SLS...] [-G|-L|-I|-C|-N] [--test])', load: () => import('./commands/apply.js') },
  run: { summary: 'run a shell command on targeted agents (run <target> <command>)', load: () => import('./commands/run.js') },
  grains: { summary: "each targeted agent's grains, or one of them (grains <target> [KEY])", load: () => import('./commands/grains.js') },
  pillar: { summary: "each targeted agent's pillar as the master renders it (pillar <target> [KEY])", load: () => import('./commands/pillar.js') },
  show: { summary: 'the compiled states of targeted agents, nothing applied (show <target> [SLS...] [--low])', load: () => import('./commands/show.js') },
  ping: { summary: 'test.ping the targeted agents, with round-trip times', load: () => import('./commands/ping.js') },
  call: { summary: "Salt's execution functions on targeted agents (call <target> <module.function> [args])", load: () => import('./commands/call.js') },
  keys: { summary: 'agent keys: list | accept ID...|--all | reject ID | delete ID', load: () => import('./commands/keys.js') },
  agents: { summary: 'accepted agents: connected/offline, last seen, os, roles, revision', load: () => import('./commands/agents.js') },
  jobs: { summary: 'job history, one job with every result (jobs [JID]), or stop one (jobs kill JID)', load: () => import('./commands/jobs.js') },
  schedule: { summary: "the master's scheduled jobs: function, target, interval, last and next run", load: () => import('./commands/schedule.js') },
  revisions: { summary: 'commits of the config repository seen by the master, with their outcome', load: () => import('./commands/revisions.js') },
  status: { summary: 'desired revision, branch head, running rollout, each agent in sync / behind / failed', load: () => import('./commands/status.js') },
  rollout: { summary: 'make a revision desired and roll it out (rollout [REV] [--force])', load: () => import('./commands/rollout.js') },
  rollback: { summary: 'go back to a revision and hold it (rollback REV [target])', load: async () => ({ run: (await import('./commands/rollout.js')).rollback }) },
  demo: { summary: 'master + one local agent on a temp dir, apply the example tree', load: () => import('./commands/demo.js') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: tsalt <command> [options]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'tsalt <command> --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write('tsalt 0.1.0\n');
    return 0;
  }
  const cmd = Object.prototype.hasOwnProperty.call(commands, name) ? commands[name] : undefined;
  if (!cmd) {
    process.stderr.write(`tsalt: unknown command '${name}'\n\n${usage()}\n`);
    return 1;
  }
  return runCommand(name, cmd.load, rest);
}
