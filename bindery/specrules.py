"""The one spec matcher: the operator's patterns on repositories, all through the same normal form.

Every pattern the operator writes about repositories goes through here: the rules on which may launch
(``allowed_specs``, ``banned_specs``), the per-repository quota tiers (``quota_tiers``) and the warm pools
(``pool_specs``). One place decides, for everyone who starts servers: the front door (a person's launch),
the launch pipeline's quota and the warm pools' refiller (servers started ahead of demand, which must stop
once their repository is banned, e.g. after a restart with a new ban, rather than keep code the operator
refused running). Patterns are matched case-insensitively (re.search) against every spelling of the
repository (repoid.rule_targets), so a ban cannot be dodged, and a tier or a pool not missed, by spelling the
repository another way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bindery.events import LaunchError
from bindery.providers import get_provider
from bindery.repoid import canonical_spec, rule_targets
from bindery.settings import Settings


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


def any_match(patterns: Iterable[re.Pattern[str]], targets: Iterable[str]) -> bool:
    targets = list(targets)
    return any(p.search(t) for p in patterns for t in targets)


class SpecRules:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.banned = compile_patterns(settings.security.banned_specs)
        self.allowed = compile_patterns(settings.security.allowed_specs)

    def targets(self, provider: str, spec: str, repo_url: str | None = None) -> list[str]:
        """The spec as sent and, if it parses (no network), every spelling of its repository; with
        ``repo_url`` (where a launch found it) the URL too, so a pattern naming the URL matches."""
        raw = canonical_spec(provider, spec)
        try:
            parsed = get_provider(self.settings, provider, spec)
        except LaunchError:  # the pipeline refuses it with the reason; rules see the raw spec
            targets = rule_targets(self.settings, raw, None, None)
        else:
            targets = rule_targets(self.settings, raw, parsed.repo_url, parsed.unresolved_ref)
        if repo_url is not None:
            targets.append(repo_url)
        return targets

    def refusal(self, provider: str, spec: str) -> str | None:
        """Why the rules refuse this repository (a message for the person), or None."""
        target = canonical_spec(provider, spec)
        targets = self.targets(provider, spec)
        if self.allowed and not any_match(self.allowed, targets):
            return (f"This service only launches repositories on its allow list, and {target} "
                    "is not on it.")
        if any_match(self.banned, targets):
            return f"{self.settings.security.banned_message} ({target})"
        return None

    def tier(self, tiers: Mapping[str, int], default: int, provider: str, spec: str, repo_url: str) -> int:
        """The number a tier table (``quota_tiers``, ``pool_specs``) gives this repository: the highest of
        the patterns that match any of its spellings, else ``default``."""
        if not tiers:
            return default
        targets = self.targets(provider, spec, repo_url)
        limits = [n for pattern, n in tiers.items() if any_match(compile_patterns([pattern]), targets)]
        return max(limits) if limits else default
