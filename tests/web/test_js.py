"""The browser's pure helpers (static/*.js) agree with their Python twins, run under node."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path


from bindery.settings import Settings
from bindery.web.ui import form_spec, providers
from bindery.web.urlpath import server_redirect

from .test_urlpath import REDIRECT_CASES

HERE = Path(__file__).parent
FORMS = {f.name: f for f in providers(Settings())}
SPEC_CASES = [
    ("gh", "https://github.com/org/repo.git", ""), ("gh", "org/repo/", "v1"),
    ("gl", "https://gitlab.com/group/sub/proj", "main"), ("git", "https://x.org/r.git", "abc"),
    ("gist", "https://gist.github.com/user/1234", ""), ("gh", "  org/r  ", " main "),
]


def run_js(cases: dict) -> dict:
    done = subprocess.run(["node", str(HERE / "js_cases.mjs")], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_js_helpers_match_python():
    launch = [["http://b.test/", asdict(FORMS["gh"]), "org/repo", "main", "a b.ipynb", "file"],
              ["http://b.test", asdict(FORMS["gl"]), "g/p", "", "lab", "url"],
              ["http://b.test/", asdict(FORMS["gh"]), "org/repo", "", "", "file"]]
    out = run_js({
        "redirect": [c[:3] for c in REDIRECT_CASES],
        "spec": [[asdict(FORMS[p]), repo, ref] for p, repo, ref in SPEC_CASES],
        "launch": launch,
        "badges": [["http://b.test/", "http://b.test/v2/gh/o/r/HEAD?labpath=a%26b"]],
    })
    assert out["redirect"] == [c[3] for c in REDIRECT_CASES]
    assert out["redirect"] == [server_redirect(u, t, p) for u, p, t, _ in REDIRECT_CASES]
    assert out["spec"] == [form_spec(FORMS[p], repo, ref) for p, repo, ref in SPEC_CASES]
    assert out["launch"] == ["http://b.test/v2/gh/org/repo/main?labpath=a%20b.ipynb",
                             "http://b.test/v2/gl/g%2Fp/HEAD?urlpath=lab",
                             "http://b.test/v2/gh/org/repo/HEAD"]
    badges = out["badges"][0]
    assert badges["md"] == ("[![Binder](http://b.test/badge_logo.svg)]"
                            "(http://b.test/v2/gh/o/r/HEAD?labpath=a%26b)")
    assert badges["rst"] == (".. image:: http://b.test/badge_logo.svg\n"
                             "   :target: http://b.test/v2/gh/o/r/HEAD?labpath=a%26b")
    assert badges["html"] == ('<a href="http://b.test/v2/gh/o/r/HEAD?labpath=a%26b">'
                              '<img src="http://b.test/badge_logo.svg" alt="Binder"></a>')
