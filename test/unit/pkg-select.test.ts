/** Which package provider a host gets: grains os_family, binaries on PATH, Salt's `providers`. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pkgProviderName } from '../../engine/providers/pkg/select.js';
import { makeRunContext } from '../../engine/run/context.js';
import { harnessBase, runState, tempDir } from '../helpers/harness.js';

const ctxFor = (grains: Record<string, unknown>) => makeRunContext(harnessBase({ grains }), 'x', 'test');
const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

describe('pkg provider selection', () => {
  it('follows os_family and what is installed', () => {
    expect(pkgProviderName(ctxFor({ os_family: 'Debian' }))).toBe('apt');
    expect(pkgProviderName(ctxFor({ os_family: 'RedHat' }))).toBe('dnf'); // dnf is installed here
    expect(pkgProviderName(ctxFor({ os_family: 'Debian', providers: { pkg: 'yumpkg' } }))).toBe('yum');
  });

  it('falls back to yum where dnf is missing', () => {
    // a PATH holding only yum and rpm: what an EL7 host looks like to the selector
    const bin = tempDir('tsalt-bin-');
    for (const b of ['yum', 'rpm']) fs.writeFileSync(path.join(bin, b), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    process.env.PATH = bin;
    expect(pkgProviderName(ctxFor({ os_family: 'RedHat' }))).toBe('yum');
    process.env.PATH = tempDir('tsalt-bin-');
    expect(() => pkgProviderName(ctxFor({ os_family: 'RedHat' }))).toThrow(/none of dnf, yum is installed/);
  });

  it('an unknown os_family is a clear state failure', async () => {
    const r = await runState('pkg.installed', { name: 'vim' }, { grains: { os_family: 'Solaris' } });
    expect(r.result).toBe(false);
    expect(r.comment).toContain("no package manager known for os_family 'Solaris'");
  });
});
