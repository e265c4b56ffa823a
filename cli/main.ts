/**
 * `tsalt <command>`: dispatch to cli/commands/<command>.ts, loaded lazily so each command pays
 * only for what it uses (start-up time is part of the speed budget).
 */
type CommandModule = { run(argv: string[]): Promise<number> };

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  local: { summary: 'apply or show states on this machine, no master (local apply|show)', load: () => import('./commands/local.js') },
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
  return (await cmd.load()).run(rest);
}
