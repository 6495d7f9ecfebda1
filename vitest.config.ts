import { defineConfig } from 'vitest/config';

// Tests spawn real processes (the osqueryd stand-in, the supervisor) from
// dist/, so `npm test` builds first. Two cores: keep parallelism modest so
// process-heavy suites do not starve each other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    teardownTimeout: 20_000,
  },
});
