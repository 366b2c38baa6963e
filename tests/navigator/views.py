"""The navigator's index: typed configuration options and a service, by @inject."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from lifespan_container import Provide, inject
from tests.navigator.containers import Container, SearchService


@inject
def index(
    request: HttpRequest,
    search_service: SearchService = Provide[Container.search_service],
    default_query: str = Provide[Container.config.DEFAULT_QUERY],
    default_limit: int = Provide[Container.config.DEFAULT_LIMIT.as_int()],
) -> JsonResponse:
    query = request.GET.get("query", default_query)
    limit = int(request.GET.get("limit", default_limit))
    return JsonResponse(
        {
            "query": query,
            "limit": limit,
            "repositories": search_service.search_repositories(query, limit),
            "token": search_service.github_client.login_or_token,
            "timeout": search_service.github_client.timeout,
        }
    )
