// Home form: live launch link and badge snippets, copy buttons, launch.
import { badgeSnippets, launchUrl } from "./spec.js";

const providers = JSON.parse(document.getElementById("providers-data").textContent);
const { publicUrl } = JSON.parse(document.getElementById("home-config").textContent);
const $ = (id) => document.getElementById(id);
const form = $("launch-form");

function current() {
  const provider = providers.find((p) => p.name === $("provider").value) || providers[0];
  const pathType = form.querySelector("input[name=pathtype]:checked").value;
  return { provider, pathType };
}

function update() {
  const { provider, pathType } = current();
  $("repo-label").textContent = provider.repo_label;
  $("repo").placeholder = provider.placeholder;
  $("ref").placeholder = provider.default_ref;
  $("path").placeholder = pathType === "url" ? "lab" : "index.ipynb";
  const repo = $("repo").value.trim();
  $("share").hidden = !repo;
  if (!repo) return null;
  const url = launchUrl(publicUrl, provider, repo, $("ref").value, $("path").value, pathType);
  const badges = badgeSnippets(publicUrl, url);
  $("launch-url").value = url;
  $("badge-md").value = badges.md;
  $("badge-rst").value = badges.rst;
  $("badge-html").value = badges.html;
  return url;
}

form.addEventListener("input", update);
form.addEventListener("change", update);
form.addEventListener("submit", (event) => {
  const url = update();
  if (!url) return; // let the browser's own validation speak
  event.preventDefault();
  window.location.assign(url);
});

for (const button of document.querySelectorAll(".copy-button")) {
  button.addEventListener("click", async () => {
    const field = $(button.dataset.copy);
    field.select();
    let ok = false;
    try {
      await navigator.clipboard.writeText(field.value);
      ok = true;
    } catch {
      ok = document.execCommand && document.execCommand("copy");
    }
    $("copy-status").textContent = ok ? "Copied." : "Select the text and copy it.";
  });
}

update();
