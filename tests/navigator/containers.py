"""The navigator's container: a client factory configured from settings, a search service."""

from __future__ import annotations

from dataclasses import dataclass, field

from dependency_injector import containers, providers


@dataclass
class GithubClient:
    """Stands in for PyGithub's client (no network in tests): remembers how it was made."""

    login_or_token: str
    timeout: int
    queries: list[str] = field(default_factory=list)

    def search_repositories(self, query: str, limit: int) -> list[str]:
        self.queries.append(query)
        return [f"{query} #{number}" for number in range(1, limit + 1)]


@dataclass
class SearchService:
    github_client: GithubClient

    def search_repositories(self, query: str, limit: int) -> list[str]:
        return self.github_client.search_repositories(query, limit)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()
    github_client = providers.Factory(
        GithubClient,
        login_or_token=config.GITHUB_TOKEN.required(),
        timeout=config.GITHUB_REQUEST_TIMEOUT.as_int(),
    )
    search_service = providers.Factory(SearchService, github_client=github_client)
