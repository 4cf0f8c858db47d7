"""What a build changed from what the repository asked for: the notice a person is shown.

A buildpack collects one sentence per change (a package left out or renamed, a pin moved, a
command skipped) while it renders the Dockerfile, says each in the build log and stores them all
in the image as a label. Whoever launches the image reads the label back from the registry and
puts the sentences in the ``ready`` event (``notice``), which the launch page shows: a launch of an
image built long ago says the same as the launch that built it. The label's value is base64 JSON,
so no Dockerfile quoting or variable expansion can alter it.
"""

from __future__ import annotations

import base64
import binascii
import json

NOTICE_LABEL = "org.bindery.notice"
MAX_SENTENCES = 100  # bounds on what a label read back from an image may hold
MAX_SENTENCE = 2000


def label_value(sentences: list[str]) -> str:
    return base64.b64encode(json.dumps(sentences).encode()).decode()


def read_label(value: str | None) -> list[str]:
    """The sentences in a notice label ([] for none or a label this code did not write)."""
    if not value:
        return []
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [str(s)[:MAX_SENTENCE] for s in data[:MAX_SENTENCES] if isinstance(s, str)]
