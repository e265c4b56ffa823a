import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Tests touch the real machine (users, packages, services): files run one at a time
    // so two of them never fight over the same system resource.
    fileParallelism: false,
    pool: 'forks',
  },
});
