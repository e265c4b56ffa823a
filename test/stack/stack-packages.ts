/**
 * The tsalt packages for the container tests: `packaging/build.mjs` (what `npm run package`
 * runs) into a directory, and the stand-in that lets dpkg see the host's Node.js.
 *
 * The containers run the host's Node.js, bind-mounted read-only at /usr/bin/node (Debian 12's
 * own nodejs is 18, too old). dpkg only knows packages, so a package named `nodejs` with the
 * host's version and no files records that fact; tsalt's real `Depends: nodejs (>= 20)` is
 * then checked by dpkg against the Node.js that actually runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execOk } from '../../engine/run/exec.js';
import { REPO_DIR } from './stack-helpers.js';

export interface Built {
  deb: string;
  rpm?: string;
}

/** Builds release `release` of the packages into `out` (formats: deb, or deb and rpm). */
export async function buildPackages(out: string, release: number, formats: 'deb' | 'both' = 'both'): Promise<Built> {
  const argv = ['node', path.join(REPO_DIR, 'packaging/build.mjs'), '--out', out, '--release', String(release)];
  if (formats === 'deb') argv.push('--only', 'deb');
  await execOk(argv, { timeoutMs: 300_000 });
  const files = fs.readdirSync(out);
  const pick = (re: RegExp) => files.find((f) => re.test(f) && f.includes(`-${release}`));
  const deb = pick(/\.deb$/);
  const rpm = pick(/\.rpm$/);
  if (!deb) throw new Error(`no .deb in ${out}: ${files.join(' ')}`);
  return { deb: path.join(out, deb), rpm: rpm ? path.join(out, rpm) : undefined };
}

/** The host's Node.js version, e.g. 20.20.2. */
export function hostNodeVersion(): string {
  return process.versions.node;
}

/** Bind mounts that give a container the host's Node.js and npm. */
export function nodeBinds(): string[] {
  const npmDir = fs.realpathSync('/usr/bin/npm').replace(/\/bin\/npm-cli\.js$/, '');
  return [`--bind-ro=${process.execPath}:/usr/bin/node`, `--bind-ro=${npmDir}:/usr/lib/node_modules/npm`];
}

/** `nodejs_<host version>_all.deb`: no files, it stands for the bind-mounted Node.js. */
export async function nodejsStandIn(out: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(out, 'nodejs-standin-'));
  fs.mkdirSync(path.join(dir, 'DEBIAN'));
  fs.writeFileSync(
    path.join(dir, 'DEBIAN/control'),
    [
      'Package: nodejs',
      `Version: ${hostNodeVersion()}-0hostbind`,
      'Architecture: all',
      'Maintainer: tsalt tests <tsalt@localhost>',
      'Section: oldlibs',
      'Priority: optional',
      "Description: the test host's Node.js, bind-mounted read-only at /usr/bin/node",
      ' Installed into the stack test containers so that dpkg and apt check the tsalt',
      " package's dependency against the Node.js the containers really run.",
      '',
    ].join('\n'),
  );
  const deb = path.join(out, `nodejs_${hostNodeVersion()}-0hostbind_all.deb`);
  await execOk(['dpkg-deb', '--root-owner-group', '--build', dir, deb]);
  fs.rmSync(dir, { recursive: true, force: true });
  return deb;
}
