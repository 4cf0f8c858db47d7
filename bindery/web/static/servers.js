// The signed-in person's panel on the launch page: who they are, their servers (open, stop),
// or a sign-in link. Reads /api/me; stops with DELETE /api/servers/<name> (same-site only).
const config = JSON.parse(document.getElementById("signin-config").textContent);
const $ = (id) => document.getElementById(id);

function link(text, href) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  return a;
}

async function stop(name, button) {
  button.disabled = true;
  button.textContent = "Stopping…";
  const r = await fetch(config.servers + encodeURIComponent(name), { method: "DELETE", credentials: "same-origin" });
  if (!r.ok) {
    button.textContent = "Could not stop";
    return;
  }
  await show();
}

async function show() {
  const panel = $("person");
  const r = await fetch(config.me, { credentials: "same-origin", cache: "no-store" });
  const who = $("person-who");
  const list = $("person-servers");
  who.replaceChildren();
  list.replaceChildren();
  panel.hidden = false;
  if (r.status === 401) {
    who.append(link("Sign in", config.signIn),
      config.mode === "optional" ? " to launch servers of your own (this launch is anonymous)." : " to launch.");
    return;
  }
  if (!r.ok) {
    who.textContent = "Your servers cannot be listed right now.";
    return;
  }
  const me = await r.json();
  who.append(`Signed in as ${me.name} · `, link("Sign out", config.signOut));
  if (me.servers.length === 0) {
    const li = document.createElement("li");
    li.textContent = "No servers yet.";
    list.append(li);
  }
  for (const server of me.servers) {
    const li = document.createElement("li");
    li.className = "server";
    li.dataset.server = server.name;
    const state = server.ready ? "running" : (server.pending ? server.pending : "stopped");
    li.append(`${server.binder_request || server.repo_url || server.name} (${state}) `);
    if (server.ready) li.append(link("Open", server.url), " ");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "stop";
    button.textContent = "Stop";
    button.addEventListener("click", () => stop(server.name, button));
    li.append(button);
    list.append(li);
  }
}

show();
