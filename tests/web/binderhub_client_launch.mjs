// Drive one launch with the published @jupyterhub/binderhub-client, unmodified, then reach the
// server with the token. Usage: node binderhub_client_launch.mjs <bindery-url> <provider/spec>
//   [urlpath] [build-token]
// Prints one JSON line: {"phases": [...], "ready": {...}, "redirect": "...", "api_status": 200}.
// Exit code 0 only when the launch reached ready and <url>api?token=... answered 200.
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";
import { LaunchSpec } from "@jupyterhub/binderhub-client/spec.js";

// The client is written for browsers: @microsoft/fetch-event-source uses window.setTimeout and
// document.removeEventListener. Node has fetch and timers; give them the browser names.
globalThis.window ??= globalThis;
globalThis.document ??= { addEventListener() {}, removeEventListener() {}, hidden: false, cookie: "" };

const [base, providerSpec, urlpath = "", buildToken] = process.argv.slice(2);
const endpoint = new URL("build/", base.endsWith("/") ? base : base + "/");
const repo = new BinderRepository(providerSpec, endpoint, { buildToken });
const phases = [];
let ready = null;
let failure = null;

const timer = setTimeout(() => {
  failure = { phase: "failed", message: "timed out in the test" };
  repo.close();
}, Number(process.env.LAUNCH_TIMEOUT_MS || 600000));

for await (const event of repo.fetch()) {
  phases.push(event.phase);
  if (event.phase === "ready") {
    ready = event;
    repo.close();
    break;
  }
  if (event.phase === "failed") {
    failure = event;
    repo.close();
    break;
  }
}
clearTimeout(timer);

const result = { phases, ready, failure };
if (ready) {
  const spec = new LaunchSpec(urlpath);
  result.redirect = spec.getJupyterServerRedirectUrl(new URL(ready.url), ready.token).toString();
  const api = new URL("api", ready.url);
  api.searchParams.set("token", ready.token);
  const response = await fetch(api);
  result.api_status = response.status;
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(ready && result.api_status === 200 ? 0 : 1);
