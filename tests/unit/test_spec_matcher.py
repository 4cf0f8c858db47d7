"""One spec matcher: quota tiers and pool patterns see every spelling of a repository, as bans do."""

from __future__ import annotations

import pytest

from bindery.providers import get_provider
from bindery.settings import Settings
from bindery.specrules import SpecRules

# one repository, spelled on two providers and in two cases
OTHER_SPELLINGS = [("gh", "ORG/Course/main"), ("git", "https%3A%2F%2FGitHub.com%2Forg%2Fcourse.git/main")]


def tier_of(settings: Settings, table: dict[str, int], default: int, provider: str, spec: str) -> int:
    url = get_provider(settings, provider, spec).repo_url
    return SpecRules(settings).tier(table, default, provider, spec, url)


@pytest.mark.parametrize("provider,spec", OTHER_SPELLINGS)
def test_a_quota_tier_matches_another_spelling(provider: str, spec: str):
    settings = Settings(quota_tiers={r"^gh/org/course/": 200})
    assert tier_of(settings, settings.launches.quota_tiers, 20, provider, spec) == 200


@pytest.mark.parametrize("provider,spec", OTHER_SPELLINGS)
def test_a_pool_pattern_matches_another_spelling(provider: str, spec: str):
    settings = Settings(pool_specs={r"^git/https://github\.com/org/course/": 3})
    assert tier_of(settings, settings.pools.pool_specs, 0, provider, spec) == 3


def test_tiers_keep_their_other_rules():
    settings = Settings()
    tiers = {r"^gh/org/": 50, r"^gh/org/course/": 200, r"github\.com/org/course$": 80}
    assert tier_of(settings, tiers, 20, "gh", "org/course/main") == 200  # the highest match wins
    assert tier_of(settings, tiers, 20, "gh", "org/other/main") == 50
    assert tier_of(settings, tiers, 20, "gh", "elsewhere/course/main") == 20  # none: the default
    # a pattern on the URL the launch found still matches (the URL is a target)
    assert tier_of(settings, {r"github\.com/org/course$": 80}, 20, "gh", "org/course/main") == 80
    assert tier_of(settings, {}, 7, "gh", "org/course/main") == 7


def test_bans_tiers_and_pools_agree_on_what_matches():
    pattern = r"^gh/org/course/"
    settings = Settings(banned_specs=[pattern], quota_tiers={pattern: 9}, pool_specs={pattern: 2})
    rules = SpecRules(settings)
    for provider, spec in OTHER_SPELLINGS + [("gh", "org/course/main")]:
        url = get_provider(settings, provider, spec).repo_url
        assert rules.refusal(provider, spec) is not None
        assert rules.tier(settings.launches.quota_tiers, 1, provider, spec, url) == 9
        assert rules.tier(settings.pools.pool_specs, 0, provider, spec, url) == 2
    url = get_provider(settings, "gh", "org/courses/main").repo_url
    assert rules.refusal("gh", "org/courses/main") is None
    assert rules.tier(settings.pools.pool_specs, 0, "gh", "org/courses/main", url) == 0
