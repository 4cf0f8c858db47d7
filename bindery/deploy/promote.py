"""`bindery promote staging prod`: give prod the version staging verified green — and nothing else.

Why: the version prod runs must have passed an end-to-end launch somewhere first. The refusal says exactly why
(never verified, verified red, verified green but since rolled back), so nobody is tempted to edit files by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bindery.deploy import version_commits as deploygit, instances, verdicts as records


class PromotionRefused(RuntimeError):
    """The version may not go to the target instance; the message is the reason."""


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    version: str
    previous: str
    verdict: records.Verdict
    deploy_commit: str | None


def check(deploy_dir: Path, source: str, target: str) -> tuple[str, records.Verdict]:
    """The version to promote and the green verdict that allows it; PromotionRefused otherwise."""
    src = instances.load(deploy_dir, source)
    instances.load(deploy_dir, target)  # must exist
    version = src.version
    if not version:
        raise PromotionRefused(f"{source} has no configured version")
    verdict = records.latest(deploy_dir, source, version)
    if verdict is None:
        raise PromotionRefused(f"refusing to promote {version} to {target}: {source} never verified it "
                               f"(run `bindery deploy {source}` first)")
    if not verdict.green:
        raise PromotionRefused(f"refusing to promote {version} to {target}: {source}'s last verification of it "
                               f"was red at {verdict.time} ({verdict.action}: {verdict.summary})")
    return version, verdict


def promote(deploy_dir: Path, source: str, target: str) -> Promotion:
    """Set the target's version to the source's verified version and commit; the caller then deploys it."""
    version, verdict = check(deploy_dir, source, target)
    previous = instances.load(deploy_dir, target).version
    if previous == version:
        return Promotion(source, target, version, previous, verdict, None)
    path = instances.set_version(deploy_dir, target, version)
    text = (f"promote {version} from {source} to {target} (was {previous or '(none)'})\n\n"
            f"{source} verified it green at {verdict.time} ({verdict.action}).\n")
    sha = deploygit.commit(deploy_dir, [path], text)
    return Promotion(source, target, version, previous, verdict, sha)
