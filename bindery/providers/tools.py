"""What resolutions share across requests: one instance per service, handed to providers."""

from __future__ import annotations

from dataclasses import dataclass

from bindery.datadir import disk_size
from bindery.providers.httpapi import ApiClient
from bindery.providers.shortsha import AbbreviatedShas
from bindery.settings import Settings


@dataclass
class ResolveTools:
    shas: AbbreviatedShas  # treeless clones for abbreviated SHAs
    api: ApiClient  # repository hosts' and DOI services' web APIs, with ETags

    @classmethod
    def create(cls, settings: Settings) -> ResolveTools:
        providers = settings.providers
        root = settings.data_cache_dir / "commits"
        max_bytes = providers.sha_cache_bytes or disk_size(root) // 100
        return cls(AbbreviatedShas(root, providers.sha_cache_repos, providers.git_fetch_timeout,
                                   max_bytes), ApiClient(providers.api_timeout))

    async def aclose(self) -> None:
        await self.api.aclose()
