"""The exceptions of django-lifespan-container.

Every message says what happened and what to do about it. This module imports
nothing from Django, so the Django-free parts of the library can raise these too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lifespan_container.engine.steps import Failure

__all__ = [
    "InjectionError",
    "LifespanContainerError",
    "MarkerUsedError",
    "MissingScopeStateError",
    "RequestScopeError",
    "ResourcesNotStartedError",
    "ShutdownFailedError",
    "StartupFailedError",
    "UnsupportedScopeError",
    "WrongEventLoopError",
]


class LifespanContainerError(Exception):
    """Base class of every exception this library raises on purpose."""


class _PhaseFailedError(LifespanContainerError):
    """A lifespan phase failed; ``failures`` lists each step that failed or hung."""

    def __init__(self, message: str, failures: Sequence[Failure] = ()) -> None:
        super().__init__(message)
        self.failures: tuple[Failure, ...] = tuple(failures)


class StartupFailedError(_PhaseFailedError):
    """The lifespan startup failed; every resource it had opened was closed again.

    The message is the one sent to the server in ``lifespan.startup.failed``: it
    names each resource or receiver that failed (or that startup was still waiting
    for when ``STARTUP_TIMEOUT`` passed) and its error.
    """


class ShutdownFailedError(_PhaseFailedError):
    """Some steps of the lifespan shutdown failed or hung; all others still ran.

    The message is the one sent to the server in ``lifespan.shutdown.failed``.
    """


class ResourcesNotStartedError(LifespanContainerError):
    """A resource was asked for while the container's resources are not open.

    Resources open in the ASGI lifespan startup. This happens when the code runs
    under a server that sends no lifespan (Django's ``runserver``, daphne, a WSGI
    server), in a test that did not start the lifespan, or after shutdown.
    """


class WrongEventLoopError(LifespanContainerError):
    """A loop-bound resource was asked for from an event loop other than its own.

    Async clients and pools belong to the event loop that opened them (the loop
    that ran the lifespan startup). Django's sync test ``Client`` and WSGI
    ``runserver`` run each async view in a new event loop, where such a resource
    would fail deep inside its driver; this error is raised instead.
    """


class UnsupportedScopeError(LifespanContainerError, ValueError):
    """The handler got an ASGI scope it does not serve (for example ``websocket``).

    It is a ``ValueError``, as Django's own handler raises for such scopes.
    """


class InjectionError(LifespanContainerError):
    """``@inject`` cannot give a view what its ``Provide[...]`` markers ask for.

    The message names the view, the parameter and how to fix it. The same
    problems are reported earlier by ``manage.py check`` (``lifespan_container.E101``).
    """


class MarkerUsedError(InjectionError, AttributeError):
    """A ``Provide[...]`` marker was used as a value: its function lacks ``@inject``.

    It is an ``AttributeError`` too, so ``hasattr()`` on a marker stays ``False``.
    """


class RequestScopeError(LifespanContainerError):
    """A request-scoped provider was used where no request is being served.

    ``RequestResource`` and ``CurrentRequest`` have a value only while a request
    is served (the handler opens a scope for each) or inside
    ``lifespan_container.request_scope()``; a management command, ``run()``, a
    startup receiver or a task that outlives its request must open a scope of its
    own. Also raised when a request-scoped generator does not yield exactly once.
    """


class MissingScopeStateError(LifespanContainerError):
    """The server gave the lifespan no ``state`` (``scope["state"]``).

    django-asgi-lifespan's name. This library's handler does not stop at it: the
    lifespan managers are entered all the same, the handler keeps their state and
    copies it into each request's scope, and a warning is logged. So it is never
    raised; it exists for code written for django-asgi-lifespan that catches it.
    """
