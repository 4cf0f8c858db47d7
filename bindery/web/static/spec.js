// Pure helpers for the home form: spec, launch link and badge snippets.
// Mirrors form_spec() in bindery/web/ui.py (kept in step by tests/web/test_js.py).

/** The spec a form entry stands for: <repo>/<ref>, repo reduced and escaped as the provider wants. */
export function formSpec(provider, repo, ref) {
  let r = repo.trim();
  if (provider.url_prefix && r.startsWith(provider.url_prefix)) {
    r = r.slice(provider.url_prefix.length);
  }
  if (provider.escape_repo) {
    r = encodeURIComponent(r);
  } else {
    r = r.replace(/^\/+|\/+$/g, "").replace(/\.git$/, "");
  }
  return `${r}/${ref.trim() || provider.default_ref}`;
}

/** The shareable launch link; a file path opens as labpath, a URL path as urlpath. */
export function launchUrl(publicUrl, provider, repo, ref, path, pathType) {
  const base = publicUrl.endsWith("/") ? publicUrl : publicUrl + "/";
  let url = `${base}v2/${provider.name}/${formSpec(provider, repo, ref)}`;
  const p = path.trim();
  if (p) {
    const key = pathType === "url" ? "urlpath" : "labpath";
    url += `?${key}=${encodeURIComponent(p)}`;
  }
  return url;
}

/** Ready-to-paste badge snippets pointing at the launch link. */
export function badgeSnippets(publicUrl, url) {
  const base = publicUrl.endsWith("/") ? publicUrl : publicUrl + "/";
  const img = `${base}badge_logo.svg`;
  const attr = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  return {
    md: `[![Binder](${img})](${url})`,
    rst: `.. image:: ${img}\n   :target: ${url}`,
    html: `<a href="${attr(url)}"><img src="${attr(img)}" alt="Binder"></a>`,
  };
}
