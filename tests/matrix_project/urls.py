"""``/<kind>/<view>`` for every cell of the matrix, the echo the HTTP clients call,
and the library's probes (the test waits for ``/health/ready``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from tests.matrix_project import matrix
from tests.matrix_project.views import KINDS, VIEWS, echo

assert tuple(KINDS) == matrix.KINDS
assert tuple(VIEWS) == matrix.VIEWS

urlpatterns: list[URLPattern | URLResolver] = [
    path("health/", include("lifespan_container.urls")),
    path("echo/<path:who>", echo),
    *(
        path(f"{kind.name}/{view}", make(kind))
        for kind in KINDS.values()
        for view, make in VIEWS.items()
    ),
]
