"""Names a release version takes outside Python: the OCI image tag and the chart's SemVer.

Why a mapping at all: the version is PEP 440 (``0.1.dev42+g1a2b3c4d5e6f``, bindery/versioning.py), but

* an OCI tag must match ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``: no ``+``;
* a Helm chart version must be SemVer 2 (``MAJOR.MINOR.PATCH[-pre][+build]``).

The image tag replaces the ``+`` of the local part with ``-``: ``0.1.dev42+g1a2b3c4d5e6f`` → ``0.1.dev42-g1a2b3c4d5e6f``.
A normalized PEP 440 version never contains ``-`` (normalization turns it into ``.``), so the mapping is one to one
and ``version_of_tag`` turns a tag back into its version.

The chart version pads the release to three parts, makes ``.devN`` a SemVer pre-release ``-dev.N`` (so it sorts before
the final release, as in PEP 440) and keeps the local part as build metadata:
``0.1.dev42+g1a2b3c4d5e6f`` → ``0.1.0-dev.42+g1a2b3c4d5e6f``.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class VersionNameError(ValueError):
    """The version cannot be named as an image tag or a chart version (the message says why)."""


def _parse(version: str) -> Version:
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise VersionNameError(f"{version!r} is not a PEP 440 version") from None
    if parsed.local and "dirty" in parsed.local.split("."):
        raise VersionNameError(f"{version} has uncommitted changes (.dirty): it is never released as an image")
    return parsed


def image_tag(version: str) -> str:
    """The OCI tag of ``version``'s images: its normalized form with ``+`` written as ``-``."""
    normalized = str(_parse(version))
    tag = normalized.replace("+", "-")
    if not OCI_TAG.fullmatch(tag):
        raise VersionNameError(f"{version} gives {tag!r}, which is not a valid OCI tag")
    return tag


def version_of_tag(tag: str) -> str:
    """The version an image tag names (the inverse of ``image_tag``)."""
    public, sep, local = tag.partition("-")
    return str(_parse(f"{public}+{local}" if sep else public))


def chart_version(version: str) -> str:
    """The SemVer 2 form of ``version`` for ``helm package --version``."""
    parsed = _parse(version)
    if parsed.epoch:
        raise VersionNameError(f"{version}: an epoch has no SemVer form")
    major, minor, patch = (list(parsed.release) + [0, 0, 0])[:3]
    if len(parsed.release) > 3:
        raise VersionNameError(f"{version}: more than three release numbers have no SemVer form")
    pre: list[str] = []
    if parsed.pre:
        pre += [parsed.pre[0], str(parsed.pre[1])]
    if parsed.post is not None:  # SemVer has nothing that sorts after the release yet before the next one
        raise VersionNameError(f"{version}: a post-release has no SemVer form")
    if parsed.dev is not None:
        pre += ["dev", str(parsed.dev)]
    text = f"{major}.{minor}.{patch}"
    if pre:
        text += "-" + ".".join(pre)
    if parsed.local:
        text += "+" + parsed.local
    return text
