/** The console's markup and styles: plain HTML and CSS, everything served by the API itself. */

export interface PageOptions {
  readonly apiPrefix: string
  /** Whether the development sign-in (a generated user from the local issuer) is offered. */
  readonly devSignIn: boolean
}

const escapeAttribute = (value: string): string =>
  value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** The page. Its script reads the API prefix and the sign-in options from the body's data attributes. */
export const html = (options: PageOptions): string => {
  const prefix = escapeAttribute(options.apiPrefix)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Realtime console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body data-api-prefix="${prefix}" data-dev-sign-in="${options.devSignIn}">
<header class="top">
  <div>
    <h1>Realtime console</h1>
    <p class="muted subtitle">Notifications over SSE, job progress over WebSocket, with stream tickets.</p>
  </div>
  <p id="stream-status" class="status" role="status" data-state="idle">Not connected</p>
</header>
<main class="grid">
    <section class="card sign-in" aria-labelledby="sign-in-heading">
      <h2 id="sign-in-heading">Sign in</h2>
      <form id="connect-form" class="stack" autocomplete="off">
        <label for="access-token">Access token</label>
        <input id="access-token" type="text" spellcheck="false" autocapitalize="off"
          placeholder="paste a bearer token (npm run token)">
        <div class="row">
          <button type="submit">Connect</button>
          <button type="button" id="disconnect" class="secondary" hidden>Disconnect</button>
        </div>
      </form>
      <div id="dev-sign-in" class="dev" hidden>
        <p>Development issuer: no token needed.</p>
        <button type="button" id="dev-sign-in-button" class="secondary">Sign in as a generated user</button>
      </div>
      <p id="identity" class="muted">Not signed in.</p>
      <p id="error" class="error" role="alert"></p>
    </section>
    <section class="card send" aria-labelledby="send-heading">
      <h2 id="send-heading">Send a notification</h2>
      <form id="send-form" class="stack">
        <label for="title">Title</label>
        <input id="title" type="text" required maxlength="200">
        <label for="body">Body</label>
        <textarea id="body" rows="2" maxlength="2000"></textarea>
        <div class="row"><button type="submit" disabled>Send</button></div>
      </form>
    </section>
    <section class="card jobs-card" aria-labelledby="jobs-heading">
      <h2 id="jobs-heading">Jobs</h2>
      <form id="job-form" class="stack">
        <div class="row fields">
          <span class="field"><label for="job-steps">Steps</label>
            <input id="job-steps" type="number" min="1" max="1000" value="10"></span>
          <span class="field"><label for="job-step-ms">Step duration (ms)</label>
            <input id="job-step-ms" type="number" min="0" max="60000" value="300"></span>
          <span class="field"><label for="job-fail-at">Fail at step</label>
            <input id="job-fail-at" type="number" min="1" max="1000" placeholder="never"></span>
        </div>
        <div class="row"><button type="submit" disabled>Start job</button></div>
      </form>
      <ul id="jobs" class="jobs" aria-label="Jobs"></ul>
    </section>
  <section class="card notifications" aria-labelledby="notifications-heading">
    <h2 id="notifications-heading">Notifications</h2>
    <p id="notifications-empty" class="muted">None yet. Send one, or POST to ${prefix}/notifications.</p>
    <ul id="notifications" class="notifications-list" aria-label="Notifications"></ul>
  </section>
</main>
</body>
</html>
`
}

export const css = `:root {
  color-scheme: light;
  --bg: #f4f5f7; --card: #fff; --text: #1c2230; --muted: #5b6476; --line: #dde1e8;
  --accent: #2557d6; --ok: #137a3a; --ok-bg: #e3f4e8; --warn: #8a5a00; --warn-bg: #fff1d6; --bad: #b3261e;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 15px; line-height: 1.45;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 0 0 .75rem; }
p { margin: .5rem 0; }
.top { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: .9rem 1.5rem;
  background: var(--card); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 1; }
.status { margin: 0; padding: .2rem .75rem; border-radius: 999px; font-weight: 600; font-size: .9rem;
  background: var(--line); color: var(--muted); white-space: nowrap; }
.status[data-state="live"] { background: var(--ok-bg); color: var(--ok); }
.status[data-state="reconnecting"] { background: var(--warn-bg); color: var(--warn); }
.subtitle { margin: .1rem 0 0; font-size: .85rem; }
.grid { display: grid; gap: 1.25rem; padding: 1.25rem 1.5rem; max-width: 1400px; margin: 0 auto; align-items: start;
  grid-template-columns: minmax(0, 1fr) minmax(0, 1.15fr) minmax(0, 1fr);
  grid-template-areas: "sign-in notifications jobs" "send notifications jobs"; }
.sign-in { grid-area: sign-in; }
.send { grid-area: send; }
.notifications { grid-area: notifications; }
.jobs-card { grid-area: jobs; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.25rem; }
.stack { display: grid; gap: .35rem; }
.row { display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; margin-top: .35rem; }
.fields { margin-top: 0; }
.field { display: grid; gap: .35rem; flex: 1 1 8rem; }
label { font-weight: 600; font-size: .9rem; }
input, textarea { font: inherit; color: inherit; padding: .45rem .6rem; border: 1px solid #b9c0cc; border-radius: 6px;
  width: 100%; background: #fff; }
textarea { resize: vertical; }
input:focus-visible, textarea:focus-visible, button:focus-visible { outline: 3px solid #9db7f5; outline-offset: 1px; }
button { font: inherit; font-weight: 600; padding: .45rem 1rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .5; cursor: not-allowed; }
.muted { color: var(--muted); }
.error { color: var(--bad); min-height: 0; }
.error:empty { display: none; }
.dev { border-top: 1px dashed var(--line); margin-top: .75rem; padding-top: .25rem; }
ul { list-style: none; margin: 0; padding: 0; }
.notifications-list li { padding: .6rem 0; border-top: 1px solid var(--line); display: grid; gap: .1rem; }
.notifications-list li:first-child { border-top: 0; }
.notification-title { font-weight: 600; overflow-wrap: anywhere; }
.notification-body { color: var(--muted); overflow-wrap: anywhere; white-space: pre-wrap; }
.notification-time { color: var(--muted); font-size: .8rem; }
.jobs { display: grid; gap: .6rem; margin-top: .75rem; }
.jobs li { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: .25rem .75rem; align-items: center; }
.job-name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem; }
.job-status { font-size: .85rem; font-weight: 600; color: var(--muted); text-align: right; }
.job-status[data-status="completed"] { color: var(--ok); }
.job-status[data-status="failed"] { color: var(--bad); }
.bar { grid-column: 1 / -1; height: .6rem; border-radius: 999px; background: var(--line); overflow: hidden; }
.bar-fill { height: 100%; width: 0; background: var(--accent); transition: width .15s linear; }
.bar[data-status="completed"] .bar-fill { background: var(--ok); }
.bar[data-status="failed"] .bar-fill { background: var(--bad); }
.job-error { grid-column: 1 / -1; color: var(--bad); font-size: .85rem; margin: 0; }
@media (prefers-reduced-motion: reduce) {
  .bar-fill { transition: none; }
}
@media (max-width: 1100px) {
  .grid { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
    grid-template-areas: "sign-in notifications" "send notifications" "jobs notifications"; }
}
@media (max-width: 760px) {
  .top { padding: .75rem 1rem; }
  .subtitle { display: none; }
  .grid { grid-template-columns: minmax(0, 1fr); grid-template-areas: "sign-in" "send" "notifications" "jobs";
    padding: 1rem; gap: 1rem; }
}
`
