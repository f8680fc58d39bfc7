import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Starts a redis-server for the Redis tests when REDIS_URL is not set (see the file).
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/bin/**"],
      reporter: ["text-summary", "json-summary"],
      thresholds: { lines: 90, branches: 90 }
    }
  }
})
