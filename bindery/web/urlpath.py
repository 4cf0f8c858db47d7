"""Where a person lands once their server is ready: ``<url>/<urlpath>?token=<token>``.

``launch_urlpath`` reads the launch link's query: ``urlpath`` as given, or the legacy ``labpath``
(-> ``doc/tree/<path>``) and ``filepath`` (-> ``tree/<path>``), which win over ``urlpath`` as they do
for BinderHub's own client. ``server_redirect`` joins it onto the server URL and adds the token, but
never leaves the server's own URL prefix: the token must not travel to another site, nor to another
user's server on the same hub (``../../user/other/``), so such paths fall back to the server root.
``static/redirect.js`` does the same join in the browser; tests hold both to the same cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

# What JavaScript's encodeURI leaves alone, so paths are spelled as BinderHub's client spells them.
_URI_SAFE = ";,/?:@&=+$-_.!~*'()#"


def launch_urlpath(params: Mapping[str, str]) -> str:
    """The path inside the server to open, from a launch link's query parameters."""
    if params.get("labpath") is not None:
        return "doc/tree/" + quote(params["labpath"].rstrip("/"), safe=_URI_SAFE)
    if params.get("filepath") is not None:
        return "tree/" + quote(params["filepath"].rstrip("/"), safe=_URI_SAFE)
    return (params.get("urlpath") or "").lstrip("/")


def server_redirect(url: str, token: str, urlpath: str = "") -> str:
    """``<url>/<urlpath>?token=<token>``, confined to the server's own URL prefix."""
    base = url if url.endswith("/") else url + "/"
    target = urljoin(base, urlpath.lstrip("/"))
    b, t = urlsplit(base), urlsplit(target)
    if (t.scheme, t.netloc) != (b.scheme, b.netloc) or not _within(t.path, b.path):
        t = b
    query = [(k, v) for k, v in parse_qsl(t.query, keep_blank_values=True) if k != "token"]
    if token:
        query.append(("token", token))
    return urlunsplit((t.scheme, t.netloc, t.path, urlencode(query, safe="/"), t.fragment))


def _within(path: str, prefix: str) -> bool:
    # A '..' the URL parser left in place (it resolves them, but be sure) would escape the prefix.
    return path.startswith(prefix) and "/../" not in path + "/"
