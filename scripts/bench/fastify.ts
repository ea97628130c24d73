/** The baseline for the HTTP benchmark: a minimal Fastify server answering what our `/health` answers. */
import Fastify from "fastify"

const port = Number(process.argv[2])
const app = Fastify({ logger: false })
app.get("/health", async () => ({ status: "ok", version: "0.1.0", environment: "test" }))
await app.listen({ port, host: "127.0.0.1" })
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)))
