"""Pull progress summaries from the run engine's pull stream (lines recorded from podman 4.3)."""

from __future__ import annotations

import json

from bindery.launches.prepull import PullProgress

PODMAN_LINES = [
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "5160f70397ea"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "088cb7ab8014"},
    {"status": "Downloading", "progressDetail": {"current": 20054678, "total": 111653573},
     "id": "5160f70397ea"},
    {"status": "Downloading", "progressDetail": {"current": 25393663, "total": 102320588},
     "id": "088cb7ab8014"},
    {"status": "Download complete", "progressDetail": {}, "id": "5160f70397ea"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "7fba1d6f34d8"},
]


def test_layers_and_bytes_are_summed_across_layers():
    progress = PullProgress()
    for line in PODMAN_LINES[:4]:
        progress.update(line)
    assert progress.summary() == {"layers": 2, "layers_done": 0,
                                  "bytes": 20054678 + 25393663, "total_bytes": 111653573 + 102320588}
    assert progress.message() == ("Pulling the image onto the server's machine: 0 of 2 layers, "
                                  "45.4 of 214.0 MB\n")
    for line in PODMAN_LINES[4:]:
        progress.update(line)
    s = progress.summary()
    assert (s["layers"], s["layers_done"], s["bytes"]) == (3, 1, 111653573 + 25393663)
    progress.finish()
    s = progress.summary()
    assert s["layers_done"] == 3 and s["bytes"] == s["total_bytes"] == 111653573 + 102320588


def test_docker_style_lines_and_noise():
    progress = PullProgress()
    for line in ('{"status":"Pulling from org/img","id":"tag"}', '{"status":"Digest: sha256:ab"}',
                 '{"status":"Already exists","progressDetail":{},"id":"aaa"}',
                 '{"status":"Downloading","progressDetail":{"current":5,"total":10},"id":"bbb"}',
                 '{"status":"Pull complete","progressDetail":{},"id":"bbb"}'):
        progress.update(json.loads(line))
    assert progress.summary() == {"layers": 2, "layers_done": 2, "bytes": 10, "total_bytes": 10}
