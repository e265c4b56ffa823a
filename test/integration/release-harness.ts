/**
 * A fleet whose master serves a bare config repository (`git:`), and an operator's clone that
 * pushes to it with real `git push`, as docs/fleet.md describes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Fleet, waitFor } from './fleet-harness.js';

export interface Revision {
  sha: string;
  subject: string;
  outcome: string;
}

export class ReleaseFleet extends Fleet {
  readonly bare: string;
  readonly work: string;

  constructor(o: { files: Record<string, string>; master?: Record<string, unknown> }) {
    super({ states: {}, git: false, master: { state_tree: undefined, pillar_tree: undefined, git: { repo: 'config.git' }, ...o.master } });
    this.bare = path.join(this.dir, 'config.git');
    this.work = path.join(this.dir, 'work');
    this.git(this.dir, 'init', '-q', '--bare', this.bare);
    this.git(this.dir, 'clone', '-q', this.bare, this.work);
    if (Object.keys(o.files).length) this.push('initial', o.files);
  }

  git(cwd: string, ...a: string[]): string {
    const r = spawnSync('git', ['-C', cwd, '-c', 'user.name=Op', '-c', 'user.email=op@example.invalid', '-c', 'init.defaultBranch=main', ...a], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${a.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** Write files in the clone (null deletes), commit, `git push origin HEAD:main`; returns the commit. */
  push(msg: string, files: Record<string, string | null>, o: { force?: boolean } = {}): string {
    this.edit(files);
    this.git(this.work, 'add', '-A');
    this.git(this.work, 'commit', '-q', '--allow-empty', '-m', msg);
    this.git(this.work, 'push', '-q', ...(o.force ? ['--force'] : []), 'origin', 'HEAD:main');
    return this.git(this.work, 'rev-parse', 'HEAD');
  }

  edit(files: Record<string, string | null>): void {
    for (const [rel, text] of Object.entries(files)) {
      const f = path.join(this.work, rel);
      if (text === null) fs.rmSync(f, { force: true });
      else {
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, text);
      }
    }
  }

  /** A file under an agent's scratch root. */
  agentFile(id: string, p: string): string | undefined {
    const f = path.join(this.dir, 'agents', id, 'root', p);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined;
  }

  async waitAgentFile(id: string, p: string, want: string | RegExp, ms = 30_000): Promise<string> {
    return waitFor(`${id}:${p} to be ${String(want)}`, () => {
      const t = this.agentFile(id, p);
      return t !== undefined && (typeof want === 'string' ? t === want : want.test(t)) ? t : undefined;
    }, ms);
  }
}
