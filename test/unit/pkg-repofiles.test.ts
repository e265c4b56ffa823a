/** Repo file editing (yum INI sections, apt source lines) on files in a temp dir. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { YumRepoFiles } from '../../engine/providers/pkg/yum-repos.js';
import { AptSources, parseSource } from '../../engine/providers/pkg/apt-sources.js';
import { tempDir } from '../helpers/harness.js';

const base = { clean_file: false, extra: {} };

describe('yum repo files', () => {
  it('creates a section with yum flags and extra options', async () => {
    const dir = tempDir();
    const r = await new YumRepoFiles(dir).planManaged({ ...base, name: 'epel', baseurl: 'http://x/', gpgcheck: true, extra: { priority: '10' } });
    expect(r.writes).toEqual([
      { path: path.join(dir, 'epel.repo'), content: '[epel]\nname=epel\nbaseurl=http://x/\nenabled=1\ngpgcheck=1\npriority=10\n', mode: 0o644 },
    ]);
    expect(Object.keys(r.changes)).toEqual(['name', 'baseurl', 'enabled', 'gpgcheck', 'priority']);
  });

  it('rejects repo ids that would break the file', async () => {
    await expect(new YumRepoFiles(tempDir()).planManaged({ ...base, name: 'a]b', baseurl: 'x' })).rejects.toThrow(/may not contain/);
  });
});

describe('apt sources', () => {
  it('matches lines whatever the spacing and component order', () => {
    const a = parseSource('deb  [arch=amd64 signed-by=/k.gpg]  http://deb.example.org/debian/ bookworm main contrib');
    const b = parseSource('deb [signed-by=/k.gpg arch=amd64] http://deb.example.org/debian bookworm contrib main # note');
    expect(a).toEqual(b);
    expect(parseSource('# deb http://x bookworm main')?.disabled).toBe(true);
    expect(parseSource('deb-src http://x')).toBeUndefined();
  });

  it('accepts an entry found in another source file, appends otherwise', async () => {
    const etc = tempDir();
    fs.mkdirSync(path.join(etc, 'sources.list.d'));
    fs.writeFileSync(path.join(etc, 'sources.list.d', 'x.list'), 'deb http://deb.example.org/debian bookworm main\n');
    const s = new AptSources(etc);
    expect((await s.planManaged({ ...base, name: 'deb http://deb.example.org/debian/  bookworm main' })).writes).toEqual([]);
    const r = await s.planManaged({ ...base, name: 'deb http://other.example.org/debian bookworm main' });
    expect(r.writes).toEqual([{ path: path.join(etc, 'sources.list'), content: 'deb http://other.example.org/debian bookworm main\n', mode: 0o644 }]);
    await expect(s.planManaged({ ...base, name: 'http://x bookworm' })).rejects.toThrow(/not an apt source line/);
  });
});
