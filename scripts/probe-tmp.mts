import * as Http from "node:http";
import { startSupabaseStandIn } from "../src/dev/SupabaseStandIn.js";
import { createTestDatabase } from "../test/support/TestDatabase.js";
import { freePort, startServer, stopServer } from "./bench/load.js";
const database = await createTestDatabase("probe");
const issuer = await startSupabaseStandIn();
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const child = await startServer(["--expose-gc", "--import", "tsx", "scripts/bench/sse-server.ts"], `${url}/health`, {
  APP_ENV: "test",
  HOST: "127.0.0.1",
  PORT: String(port),
  LOG_LEVEL: "warning",
  DATABASE_URL: database.url,
  SUPABASE_URL: issuer.url,
  SUPABASE_ANON_KEY: issuer.anonKey,
  SUPABASE_SERVICE_ROLE_KEY: issuer.serviceRoleKey,
  SSE_MAX_SUBSCRIBERS: "2000",
});
const token = await issuer.signToken();
const agent = new Http.Agent({ keepAlive: false });
const mem = async () => (await (await fetch(`${url}/bench/memory`)).json()) as any;
const open = (path: string) =>
  new Promise<Http.ClientRequest>((resolve) => {
    const r = Http.get(`${url}${path}`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.on("data", () => {});
      resolve(r);
    });
  });
await fetch(`${url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
for (const path of ["/api/v1/events", "/api/v1/events"]) {
  const a = await mem();
  const reqs = await Promise.all(Array.from({ length: 500 }, () => open(path)));
  await new Promise((r) => setTimeout(r, 500));
  const b = await mem();
  console.log(
    path,
    "heap",
    ((b.heapUsed - a.heapUsed) / 500 / 1024).toFixed(1),
    "external",
    ((b.external - a.external) / 500 / 1024).toFixed(1),
    "ab",
    ((b.arrayBuffers - a.arrayBuffers) / 500 / 1024).toFixed(1),
    "rss",
    ((b.rss - a.rss) / 500 / 1024).toFixed(1),
  );
  for (const r of reqs) r.destroy();
  await new Promise((r) => setTimeout(r, 1000));
}
await stopServer(child);
await issuer.stop();
await database.drop();
