import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    env: { SWITCHBOARD_SIM_TIME_SCALE: '0', NO_COLOR: '1', SWITCHBOARD_METRICS: 'memory' },
  },
});
