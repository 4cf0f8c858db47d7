"""The build's success line (bindery/build/repo2docker.py: end_line) is recognised only as a
top-level JSON line of its own, never inside repo2docker's log lines (where a repository's build
output is), and it is spelled the same in the build image's entry."""

from __future__ import annotations

import json

from bindery.build import repo2docker, repo2docker_entry
from bindery.build.repo2docker import END_KEY, end_line, parse_line


def test_the_entry_and_bindery_agree_on_the_line():
    assert repo2docker_entry.END_KEY == repo2docker.END_KEY
    assert repo2docker_entry.END_TOKEN_ENV == repo2docker.END_TOKEN_ENV


def test_own_line_gives_its_token():
    assert end_line(json.dumps({END_KEY: "abc123"}).encode() + b"\n") == "abc123"


def test_build_output_carrying_the_line_is_not_the_end():
    inner = json.dumps({END_KEY: "abc123"})
    wrapped = json.dumps({"phase": "building", "message": inner + "\n"}).encode()
    assert end_line(wrapped) is None
    assert parse_line(wrapped).message == inner + "\n"  # still shown as build output


def test_other_lines_are_not_the_end():
    for raw in (b"", b"plain text\n", f"{END_KEY} abc\n".encode(), b"[1, 2]\n",
                json.dumps({END_KEY: 42}).encode(), b'{"phase": "pushing", "message": "x"}'):
        assert end_line(raw) is None
