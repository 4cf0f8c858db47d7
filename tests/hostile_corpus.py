"""Hostile and malformed (provider, spec) pairs: every one must end in a clear 4xx or `failed`.

Families: option injection, git transport tricks, local paths and traversal, control characters,
unicode look-alikes, oversized values and URL-encoding games. Commands in them would create
`CANARY` if anything ever ran them.
"""

from __future__ import annotations

from urllib.parse import quote

CANARY = "/tmp/bindery-hostile-canary"
TOUCH = f"touch {CANARY}"


def esc(text: str) -> str:
    return quote(text, safe="")


def corpus(git_base: str) -> list[tuple[str, str]]:
    good_repo = f"{git_base}/org/nope"
    refs = [
        f"--upload-pack={TOUCH}", f"--upload-pack=sh -c '{TOUCH}'", "-u", f"-u{TOUCH}",
        "--exec=/bin/sh", f"--config=core.sshCommand={TOUCH}", "-c", "--", "-", "--help",
        f"$({TOUCH})", f"`{TOUCH}`", f";{TOUCH}", f"|{TOUCH}", f"&&{TOUCH}", "main;id",
        "..", "../..", "a/../../b", "refs/../../etc", "main..dev", "@{-1}", "HEAD@{1}",
        "main.lock", "main/", "main.", "/main", ".hidden", "x//y", "a b", "tab\there",
        "nl\nx", "cr\rx", "nul\x00x", "bell\x07", "esc\x1b[31m", "del\x7f",
        "ma\u0456n", "\u202emain", "main\u200b", "ｍａｉｎ", "main\ufeff", "\u2212u",
        "a" * 256, "b" * 1000, "c/" * 200, "%2D%2Dupload-pack", "%00", "%0a", "%252e%252e",
        "~main", "^main", ":main", "main?x", "main*", "[main]", "main\\x", "'", '"', "<x>",
    ]
    pairs: list[tuple[str, str]] = []
    for ref in refs:
        pairs.append(("git", f"{esc(good_repo)}/{esc(ref)}"))
        pairs.append(("gh", f"org/repo/{esc(ref)}"))
    urls = [
        "file:///etc", "file://localhost/etc/passwd", "FILE:///etc", f"ext::sh -c {TOUCH}",
        f"ext::sh -c {esc(TOUCH)}", "ext::/bin/sh", "fd::0", "fd::1,2", "ssh://git@127.0.0.1/x",
        "git+ssh://127.0.0.1/x", "ssh://-oProxyCommand=touch/x", "git@127.0.0.1:org/x",
        "127.0.0.1:/tmp/x", "/tmp/x", "./x", "../x", "~/x", "x", "", " ", "-oProxyCommand=x",
        f"--upload-pack={TOUCH}", "http://user:pw@127.0.0.1/x", "https://tok@127.0.0.1/x",
        "http://127.0.0.1/x?a=b", "http://127.0.0.1/x#frag", "http:///x", "http://:80/x",
        "http://127.0.0.1:99999/x", "http://127.0.0.1:-1/x", "http://127.0.0.1/-x",
        "http://127.0.0.1/x y", "http://127.0.0.1/x\ty", "http://127.0.0.1/x\nHost: evil",
        "http://127.0.0.1/\x00x", "http://exa\u0430mple.org/x", "http://xn--80ak6aa92e.com/x",
        "http://127.0.0.1/%2e%2e/%2e%2e/etc", "javascript:alert(1)", "data:text/plain,x",
        "gopher://127.0.0.1/x", "ftp://127.0.0.1/x", "rsync://127.0.0.1/x", "svn://127.0.0.1/x",
        "http://" + "a" * 3000 + "/x", "http://127.0.0.1/" + "x/" * 1500,
        "http://[::1/x", "http://[zz::1]/x", "http://127.0.0.1/x\\..\\y", "\\\\server\\share",
        "transport::http://127.0.0.1/x", "http::127.0.0.1/x",
        # private networks (the tests allow only 127.0.0.1): refused before any connection
        "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x.git", "git://192.168.1.1/x",
        "https://[::1]:8081/hub/api", "http://[fd00::1]/x", "http://[::ffff:127.0.0.2]/x",
        "http://127.0.0.2:8081/hub/api", "git://0.0.0.0/x", "http://100.64.0.1/x",
        # IPv4 wrapped in IPv6 (NAT64, 6to4, Teredo): as private as the address inside
        "http://[64:ff9b::7f00:1]/x", "git://[2002:7f00:1::1]/x",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
    ]
    for url in urls:
        pairs.append(("git", f"{esc(url)}/main"))
    specs = [
        ("gh", ""), ("gh", "org"), ("gh", "org/repo"), ("gh", "../../etc/passwd/main"),
        ("gh", "-org/repo/main"), ("gh", "org/-repo/main"), ("gh", "org/re po/main"),
        ("gh", "org/..%2F..%2Fetc/main"), ("gh", ".%2E/x/main"), ("gh", "org/repo\x00/main"),
        ("gh", "оrg/repo/main".replace("o", "о", 1)), ("gh", f"org/{esc(TOUCH)}/main"),
        ("gl", "noslash/main"), ("gl", f"{esc('../etc')}/main"), ("gl", f"{esc('-g/p')}/main"),
        ("gl", f"{esc('g/p?x=1')}/main"), ("gl", "main"), ("gl", f"{esc('g//p')}/main"),
        ("gist", ""), ("gist", "user"), ("gist", "user/../x/main"), ("gist", "-u/x/main"),
        ("gist", "user/x y/main"), ("git", ""), ("git", "main"), ("git", "%2F/main"),
        ("nosuch", "x/y/z"), ("local", "/etc"), ("local", "%2Fetc"), ("file", "/etc/passwd"),
        ("zenodo", "../../etc/passwd"), ("zenodo", f"10.5281/zenodo.1{esc(';' + TOUCH)}"),
        ("figshare", "10.6084/m9.figshare.-1"), ("dataverse", "10.7910/../../x"),
        ("hydroshare", "x" * 33), ("ckan", esc("http://169.254.169.254/dataset/x")),
        ("image", "quay.io/x/y:1"), ("image", f"{esc('127.0.0.1:1/-x')}"),
        ("GH", "org/repo/main"), ("g%68", "org/repo/main"),
        ("ext", f"sh -c {esc(TOUCH)}"), ("..", "x"), ("gh", "org/repo/" + "%" * 10),
        ("gh", "a" * 300 + "/repo/main"), ("gh", "org/" + "r" * 300 + "/main"),
    ]
    pairs.extend(specs)
    return pairs


FULL_SHA = "0123456789abcdef0123456789abcdef01234567"


def private_network_specs(blocked: str, named: str, redirector: str) -> list[tuple[str, str]]:
    """Specs that must make NO connection to the listener at `blocked` (host:port, not allowed).

    `named` is a host name that resolves to the blocked address, `redirector` an allowed http
    server (host:port) that answers every request with a 302 to the blocked address.
    """
    urls = [f"git://{blocked}/org/x", f"http://{blocked}/org/x.git", f"https://{blocked}/org/x",
            f"git://{named}/org/x", f"http://{named}/org/x.git"]
    pairs = [("git", f"{esc(url)}/{ref}") for url in urls for ref in ("main", FULL_SHA)]
    pairs += [("git", f"{esc(f'http://{redirector}/org/x.git')}/{ref}") for ref in ("main", FULL_SHA)]
    return pairs
