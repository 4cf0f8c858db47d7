// Launch page: follow /build/<provider>/<spec> (EventSource, which resumes with Last-Event-ID
// after a dropped connection), show phase, progress, queue place and log; go to the server on ready.
import { redirectUrl } from "./redirect.js";

const config = JSON.parse(document.getElementById("launch-config").textContent);
const $ = (id) => document.getElementById(id);
const log = $("log");
const progress = $("progress");
const baseTitle = document.title;

// Rough share of the way each phase stands for; building creeps on with each log line.
const STEPS = { waiting: 5, fetching: 15, building: 25, pushing: 75, built: 80, launching: 85, ready: 100 };
const LABELS = {
  waiting: "Waiting for a build slot",
  fetching: "Fetching the repository",
  building: "Building the environment",
  pushing: "Storing the built image",
  built: "Environment built",
  launching: "Starting your server",
  ready: "Ready: opening your server",
  failed: "Launch failed",
};

let lastStream = null;
let lastIndex = -1;
let done = false;

function setIcon(state) {
  $("favicon").href = config.icons[state];
}

function setPhase(text) {
  $("phase").textContent = text;
  document.title = `${text} · ${baseTitle}`;
}

function appendLog(message) {
  if (!message) return;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(message.endsWith("\n") ? message : message + "\n");
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// The build's whole log stays readable at its own address, also after the build (and this page).
function showFullLog(url) {
  const link = $("full-log");
  if (!/^https?:\/\//.test(url)) return; // only ever a web address of ours, never a script URL
  link.href = url;
  link.hidden = false;
}

function advance(phase) {
  if (phase === "building" || phase === "unknown") {
    progress.value = Math.min(70, Math.max(progress.value, STEPS.building) + 0.5);
  } else if (phase in STEPS) {
    progress.value = Math.max(progress.value, STEPS[phase]);
  }
}

function finish(source) {
  done = true;
  source.close();
}

function seenBefore(lastEventId) {
  // A server that replays from the start on reconnect would duplicate the log: skip seen ids.
  // Ids are "<n>" or "<stream>.<n>"; only the number after the last dot orders them.
  const match = /^(.*?)(\d+)$/.exec(lastEventId || "");
  if (!match) return false;
  const stream = match[1];
  const n = Number(match[2]);
  if (stream === lastStream && n <= lastIndex) return true;
  lastStream = stream;
  lastIndex = n;
  return false;
}

function onEvent(source, event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return; // not ours to show
  }
  const phase = String(data.phase || "unknown").toLowerCase();
  // Terminal events always count (an event without an id repeats the previous lastEventId).
  if (seenBefore(event.lastEventId) && phase !== "ready" && phase !== "failed") return;
  appendLog(data.message);
  if (data.build_log_url) showFullLog(data.build_log_url);
  advance(phase);
  if (phase in LABELS) setPhase(LABELS[phase]);
  const queue = $("queue");
  if (phase === "waiting" && data.position) {
    queue.hidden = false;
    queue.textContent = `Position in the build queue: ${data.position}`;
  } else if (phase !== "waiting") {
    queue.hidden = true;
  }
  if (phase === "ready") {
    finish(source);
    setIcon("ready");
    const target = redirectUrl(data.url, config.urlpath, data.token);
    $("ready-link").href = target;
    $("ready").hidden = false;
    // What the environment changed from what the repository asks for: shown, and the person
    // opens the server when they have read it (a redirect would take it away at once).
    const resume = data.resume_url ? {
      url: data.resume_url, home_download_url: data.home_download_url,
      home_delete_url: data.home_delete_url,
    } : config.resume;
    if (showNotice(data.notice)) {
      showResume(resume);
      $("ready-auto").hidden = true;
      $("ready-link").focus();
      return;
    }
    if (showResume(resume)) {
      // The person needs a moment to keep the link: open the server after a pause they can stop.
      const timer = setTimeout(() => window.location.replace(target), RESUME_PAUSE_MS);
      $("resume-stay").hidden = false;
      $("resume-stay").onclick = () => {
        clearTimeout(timer);
        $("resume-stay").hidden = true;
        $("ready-auto").hidden = true;
      };
      return;
    }
    window.location.replace(target);
  } else if (phase === "failed") {
    finish(source);
    fail(data.message || "The launch failed.");
  }
}

const RESUME_PAUSE_MS = 8000;

function showResume(resume) {
  if (!resume || !resume.url) return false;
  $("resume-url").value = resume.url;
  $("resume-download").href = resume.home_download_url;
  $("resume-delete").onclick = async () => {
    if (!window.confirm("Delete your files for good? The resume link stops working.")) return;
    const answer = await fetch(resume.home_delete_url, { method: "POST" });
    const body = await answer.json().catch(() => ({}));
    $("resume-status").textContent = body.message || `Could not delete (HTTP ${answer.status}).`;
  };
  $("resume").hidden = false;
  return true;
}

function showNotice(sentences) {
  if (!Array.isArray(sentences) || sentences.length === 0) return false;
  const list = $("notice-list");
  for (const sentence of sentences) {
    const item = document.createElement("li");
    item.textContent = String(sentence); // text, never markup
    list.append(item);
  }
  $("notice").hidden = false;
  return true;
}

function fail(message) {
  setIcon("failed");
  setPhase(LABELS.failed);
  progress.classList.add("failed");
  const error = $("error");
  error.textContent = message.trim();
  error.hidden = false;
  $("retry").href = window.location.href;
  $("actions").hidden = false;
  $("log-box").open = true;
}

function start() {
  setIcon("building");
  const source = new EventSource(config.buildUrl);
  source.onmessage = (event) => onEvent(source, event);
  source.onopen = () => {
    if (!done && $("phase").textContent.startsWith("Connection")) setPhase("Reconnected");
  };
  source.onerror = () => {
    if (done) return;
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error, not a dropped connection): nothing will follow.
      done = true;
      fail("Could not reach the launch service. Try again in a moment.");
    } else {
      // A dropped connection: EventSource reconnects and resumes from the last event id.
      setPhase("Connection lost, reconnecting…");
    }
  };
}

start();
