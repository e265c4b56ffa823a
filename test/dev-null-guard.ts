/**
 * Setup file of the projects that run as root (vitest.config.ts): after each test file, fail
 * that file when /dev/null is no longer a 0666 character device (test/helpers/dev-null.ts).
 */
import { afterAll } from 'vitest';
import { assertDevNull } from './helpers/dev-null.js';

// vitest reports a failing afterAll against the file it ran for
afterAll(() => assertDevNull('after this test file'));
