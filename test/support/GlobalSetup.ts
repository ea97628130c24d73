/**
 * vitest globalSetup: one database for the whole test run.
 *
 * Add to vitest.config.ts:   test: { globalSetup: ["test/support/GlobalSetup.ts"] }
 * In a test:                 import { provided } from "./Provided.js"; const url = provided("databaseUrl")
 *
 * Before creating it, drops the `t_*` databases that crashed earlier runs left behind (see
 * dropStaleTestDatabases in ./database.ts); the run's own database is dropped at teardown.
 */
import type {} from "vitest"
import type { TestProject } from "vitest/node"
import { createTestDatabase, dropStaleTestDatabases } from "./TestDatabase.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** postgres://postgres@127.0.0.1:5432/<name>: the run's database, direct. */
    databaseUrl: string
    /** Its name. */
    databaseName: string
    /** The same database through the shared PgBouncer (only usable if PgBouncer runs: scripts/pgbouncer.sh). */
    databaseUrlViaPgBouncer: string
  }
}

/** The part of vitest's TestProject this setup uses (so it can be called from a test, too). */
export type ProvideTarget = Pick<TestProject, "provide">

export default async function setup(project: ProvideTarget): Promise<() => Promise<void>> {
  const stale = await dropStaleTestDatabases()
  if (stale.dropped.length > 0) {
    console.info(`[globalSetup] dropped ${stale.dropped.length} stale test database(s): ${stale.dropped.join(", ")}`)
  }
  for (const failure of stale.failed) {
    console.warn(`[globalSetup] could not drop stale test database ${failure.name}: ${failure.error}`)
  }
  const db = await createTestDatabase("run")
  // Left empty: every server a test starts migrates it, as the app does at startup. Test files start theirs in
  // parallel, so the first ones race on the empty database, which the migration lock serialises (see Migrations).
  project.provide("databaseUrl", db.url)
  project.provide("databaseName", db.name)
  project.provide("databaseUrlViaPgBouncer", db.urlViaPgBouncer)
  return async () => {
    await db.drop()
  }
}
