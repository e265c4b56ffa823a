/**
 * yum provider, for RPM hosts without dnf (EL7). Same command line as dnf except the query:
 * yum has no built-in `repoquery`, so available versions come from `yum list`.
 * Not exercised by the test suite: Debian 12 ships dnf but not yum.
 */
import type { HostEnv } from '../host.js';
import { DnfProvider, type DnfOptions } from './dnf.js';

export class YumProvider extends DnfProvider {
  constructor(host: HostEnv, o: DnfOptions = {}) {
    super(host, o, 'yum');
  }

  protected override queryCmd(): string[] {
    return ['list', 'available', '--showduplicates'];
  }

  /** `name.arch  [epoch:]version-release  repo`, possibly wrapped over lines: read as tokens. */
  protected override parseAvailable(out: string): Array<{ name: string; version: string }> {
    const body = out
      .split('\n')
      .filter((l) => !/^(Available|Installed) Packages/.test(l.trim()))
      .join(' ');
    const tokens = body.split(/\s+/).filter(Boolean);
    const rows: Array<{ name: string; version: string }> = [];
    for (let i = 0; i + 2 < tokens.length; i += 3) {
      const nameArch = tokens[i]!;
      const dot = nameArch.lastIndexOf('.');
      rows.push({ name: dot > 0 ? nameArch.slice(0, dot) : nameArch, version: tokens[i + 1]!.replace(/^0:/, '') });
    }
    return rows;
  }
}
