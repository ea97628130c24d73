/**
 * What the `db` project's global setup provides (the run's database: see GlobalSetup.ts). A file that reads it
 * outside that project fails at once, saying so, instead of running on some other database.
 */
import { inject } from "vitest"

export const provided = (key: "databaseUrl" | "databaseName" | "databaseUrlViaPgBouncer"): string => {
  const value: string | undefined = inject(key)
  if (value === undefined) {
    throw new Error(
      `${key} is not provided: this test file uses the database, so it belongs to the "db" project ` +
        `(vitest.config.ts lists the files that need no database)`
    )
  }
  return value
}
