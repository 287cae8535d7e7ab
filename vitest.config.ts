// Test projects: `unit` (fast, no services, HTTP mocked with msw) and `integration` (a real MLflow
// server and redis-server started once by test/support/global-setup.ts). Integration files run
// at most two at a time, after the unit files (separate groupOrder, since vitest 4 requires
// projects with different maxWorkers to be in different groups).

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
