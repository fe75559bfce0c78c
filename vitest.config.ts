import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files own their databases and queue prefixes; files run in parallel on 2 cores.
    pool: 'forks',
  },
});
