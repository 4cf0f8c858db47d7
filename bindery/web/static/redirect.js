// Where the browser goes once the server is ready: <url>/<urlpath>?token=<token>.
// Mirrors server_redirect() in bindery/web/urlpath.py: the token never leaves the server's own
// URL prefix (not another site, not another user's server on the same hub).

export function redirectUrl(serverUrl, urlpath, token) {
  const base = new URL(serverUrl.endsWith("/") ? serverUrl : serverUrl + "/");
  let target = new URL((urlpath || "").replace(/^\/+/, ""), base);
  if (target.origin !== base.origin || !target.pathname.startsWith(base.pathname)) {
    target = new URL(base);
  }
  target.searchParams.delete("token");
  if (token) target.searchParams.append("token", token);
  return target.toString();
}
