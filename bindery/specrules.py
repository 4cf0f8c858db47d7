"""The operator's rules on which repositories may launch: ``allowed_specs`` and ``banned_specs``.

One place decides, for everyone who starts servers: the front door (a person's launch) and the warm
pools' refiller (servers started ahead of demand, which must stop once their repository is banned,
e.g. after a restart with a new ban, rather than keep code the operator refused running). Patterns
are matched case-insensitively against every spelling of the repository (repoid.rule_targets), so a
ban cannot be dodged by spelling the repository another way.
"""

from __future__ import annotations

import re

from bindery.events import LaunchError
from bindery.providers import get_provider
from bindery.settings import Settings
from bindery.repoid import canonical_spec, rule_targets


class SpecRules:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.banned = [re.compile(p, re.IGNORECASE) for p in settings.security.banned_specs]
        self.allowed = [re.compile(p, re.IGNORECASE) for p in settings.security.allowed_specs]

    def targets(self, provider: str, spec: str) -> list[str]:
        """The spec as sent and, if it parses (no network), every spelling of its repository."""
        raw = canonical_spec(provider, spec)
        try:
            parsed = get_provider(self.settings, provider, spec)
        except LaunchError:  # the pipeline refuses it with the reason; rules see the raw spec
            return rule_targets(self.settings, raw, None, None)
        return rule_targets(self.settings, raw, parsed.repo_url, parsed.unresolved_ref)

    def refusal(self, provider: str, spec: str) -> str | None:
        """Why the rules refuse this repository (a message for the person), or None."""
        target = canonical_spec(provider, spec)
        targets = self.targets(provider, spec)
        if self.allowed and not any(p.search(t) for p in self.allowed for t in targets):
            return (f"This service only launches repositories on its allow list, and {target} "
                    "is not on it.")
        if any(p.search(t) for p in self.banned for t in targets):
            return f"{self.settings.security.banned_message} ({target})"
        return None
