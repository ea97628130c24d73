import { configDefaults, defineConfig } from "vitest/config"

/**
 * Test files that need no Postgres: the `unit` project runs them without the database's global setup (alone with
 * `npm run test:unit`). Every other file is in the `db` project, which creates the run's database first; a file
 * listed here that asks for it fails at once, saying so (test/support/Provided.ts).
 */
const withoutDatabase = [
  "test/testing/**",
  "test/core/Architecture.test.ts",
  "test/core/app/**",
  "test/core/auth/**",
  "test/core/clients/**",
  "test/core/db/AcquireDeadlines.test.ts",
  "test/core/db/DbResilience.test.ts",
  "test/core/db/Embedded.test.ts",
  "test/core/http/HttpApiRoutes.test.ts",
  "test/core/http/node/**",
  "test/core/realtime/SseBus.test.ts",
  "test/core/realtime/WebSocketHub.test.ts",
  "test/core/realtime/Wire.test.ts",
  "test/core/runtime/ContextOverlay.test.ts",
  "test/core/runtime/LogNow.test.ts",
  "test/core/runtime/Time.test.ts",
  "test/dev/**",
  "test/domain/DemoJob.test.ts",
  "test/domain/UserSync.test.ts"
]

export default defineConfig({
  test: {
    // Per project: `extends` would add a root `include` to each project's own.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: withoutDatabase } },
      {
        extends: true,
        test: {
          name: "db",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...withoutDatabase],
          globalSetup: ["test/support/GlobalSetup.ts"]
        }
      }
    ]
  }
})
