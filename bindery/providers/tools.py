"""What resolutions share across requests: one instance per service, handed to providers."""

from __future__ import annotations

from dataclasses import dataclass

from bindery.providers.httpapi import ApiClient
from bindery.providers.shortsha import AbbreviatedShas
from bindery.settings import Settings


@dataclass
class ResolveTools:
    shas: AbbreviatedShas  # treeless clones for abbreviated SHAs
    api: ApiClient  # repository hosts' and DOI services' web APIs, with ETags

    @classmethod
    def create(cls, settings: Settings) -> ResolveTools:
        return cls(AbbreviatedShas(settings.data_cache_dir / "commits",
                                   settings.providers.sha_cache_repos, settings.providers.git_fetch_timeout),
                   ApiClient(settings.providers.api_timeout))

    async def aclose(self) -> None:
        await self.api.aclose()
