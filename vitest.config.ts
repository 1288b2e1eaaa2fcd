import { defineConfig } from 'vitest/config';

// Integration tests drive a real Docker Swarm: they are slow and share one daemon, so files run
// one at a time and each test gets generous time. Speed is measured in bench/, never here.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Images every swarm test needs, built once before any file runs (test/global-setup.ts).
    globalSetup: ['test/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
    reporters: ['default', 'json'],
    outputFile: { json: 'dist/test-report.json' },
  },
});
