import { defineConfig } from 'vitest/config';

/**
 * Five projects: every test file belongs to exactly one of fast, host, fleet, stack
 * (test/unit/vitest-projects.test.ts), and fleet-pg runs fleet's files again on PostgreSQL:
 * - fast:  no root, no external programs, files in parallel (`npm run test:fast`)
 * - host:  root and real programs (apt, dnf, useradd, systemd, git...), one file at a time
 *          because files share the machine (users, packages, units)
 * - fleet: master and agents over TLS websockets on loopback, one file at a time (ports, CPU)
 * - fleet-pg: the same fleet files on a pair of masters sharing PostgreSQL
 *          (TSALT_TEST_STORE=postgres, TSALT_TEST_MASTERS=2: the harness starts a PostgreSQL
 *          per file, both masters on one database of their own, agents on the second, the CLI
 *          on the first). `npm run test:fleet-pg1` runs them on one PostgreSQL master.
 * - stack: the 3-tier stack's states, configs and hosts
 * `npm test` (scripts/test.sh) runs them all, in that order (sequence.groupOrder).
 */

/** Unit tests that need root or run real programs (useradd, git, tar, localedef, promtool...). */
export const HOST_UNIT = [
  // reads dist/ (the generator runs on the build): fast has no build step
  'docs-states',
  // unless/onlyif/creates run /bin/sh
  'engine-requisites',
  // renders the same templates with the real Jinja2 (python3)
  'jinja-differential',
  'guards',
  'metrics',
  // useradd, and getent in a private mount namespace
  'nss',
  'pkg-select',
  'pkg-version',
  // starts a private PostgreSQL cluster (initdb, postgres as the postgres user)
  'postgres-harness',
  'store-schema-dialects',
  'store-contract-pg',
  // runs the built master (dist/) in a fresh process
  'store-lazy-pg',
  'store-presence-pg',
  'salt-exec',
  'schedule',
  'store-tree',
  'states-alternatives',
  'states-archive',
  'states-cmd',
  'states-cron',
  'states-file-block',
  'states-file-comment',
  'states-file-edit',
  'states-file-managed',
  'states-file-paths',
  'states-file-remote',
  'states-file-serialize',
  'states-git',
  'states-grains',
  'states-group',
  'states-host',
  'states-locale',
  'states-mount',
  'states-npm',
  'states-ssh-auth',
  'states-timezone',
  'states-user',
].map((n) => `test/unit/${n}.test.ts`);

const FLEET = ['test/integration/fleet-*.test.ts', 'test/security/**/*.test.ts', 'test/console/**/*.test.ts'];

export const PROJECTS: Record<string, { include: string[]; exclude: string[]; env?: Record<string, string> }> = {
  fast: { include: ['test/unit/**/*.test.ts'], exclude: HOST_UNIT },
  host: { include: ['test/integration/**/*.test.ts', 'test/faults/**/*.test.ts', ...HOST_UNIT], exclude: FLEET },
  fleet: { include: FLEET, exclude: [] as string[] },
  'fleet-pg': { include: FLEET, exclude: [] as string[], env: { TSALT_TEST_STORE: 'postgres', TSALT_TEST_MASTERS: process.env.TSALT_TEST_MASTERS ?? '2' } },
  stack: { include: ['test/stack/**/*.test.ts'], exclude: [] as string[] },
};

/** projects that run files of another project again, in another setting */
export const RERUNS: Record<string, string> = { 'fleet-pg': 'fleet' };

const order = ['fast', 'host', 'fleet', 'fleet-pg', 'stack'] as const;

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    projects: order.map((name, i) => ({
      extends: true,
      test: {
        name,
        include: PROJECTS[name]!.include,
        exclude: [...PROJECTS[name]!.exclude, '**/node_modules/**'],
        env: PROJECTS[name]!.env ?? {},
        // only `fast` touches nothing shared: the others run one file at a time
        fileParallelism: name === 'fast',
        // the others spawn `bin/tsalt` or read dist/: build it first (fast needs no build)
        globalSetup: name === 'fast' ? [] : ['test/global-setup.ts'],
        // root projects: the file after which /dev/null is damaged fails (test/helpers/dev-null.ts)
        setupFiles: name === 'fast' ? [] : ['test/dev-null-guard.ts'],
        sequence: { groupOrder: i },
      },
    })),
  },
});
