"""django-asgi-lifespan's lifespan managers, for the handler: the registry and the signal.

:data:`REGISTERED` holds the factories given to
:func:`~lifespan_container.register.register_lifespan_manager`; at each lifespan
startup the handler adds those the ``asgi_lifespan`` receivers return, and the
engine (:mod:`lifespan_container.engine.managers`) enters them all, merges their
mappings into the state, and exits them at shutdown.

When the server gives the lifespan no ``state`` (some servers run the lifespan
without it), the managers are entered all the same, into a state the handler keeps
(:attr:`Runtime.kept_state`) and copies into the scope of each request that comes
without one, as a server would have.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

from asgiref.sync import iscoroutinefunction, sync_to_async

from lifespan_container._redact import get_logger
from lifespan_container.engine.managers import Factories, LifespanManagers
from lifespan_container.engine.steps import Failure, Tracker, qualified_name
from lifespan_container.signals import asgi_lifespan

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lifespan_container._runtime import Runtime
    from lifespan_container.engine.managers import Factory

__all__ = ["REGISTERED", "managers_for"]

logger = get_logger("lifespan_container")

REGISTERED: Final = Factories()
"""The factories given to ``register_lifespan_manager``, each once."""


def managers_for(scope: Mapping[str, Any], sender: type, runtime: Runtime) -> LifespanManagers:
    """The lifespan managers of one lifespan connection, filling its ``state``."""
    given = scope.get("state")
    kept: dict[str, Any] = {}
    state = given if isinstance(given, MutableMapping) else kept

    async def collect(tracker: Tracker) -> tuple[list[Factory], list[Failure]]:
        found, failures = await _send(sender, scope, state, tracker)
        factories = [*REGISTERED, *found]
        if factories and state is kept and not failures:
            logger.warning(
                "The server gave the lifespan no state (scope['state']): the lifespan "
                "managers are entered all the same, and the handler gives their values to "
                "each request (request.state with LifespanStateMiddleware, "
                "lifespan_state(request)). asgi_startup receivers get state=None."
            )
            runtime.kept_state = kept
        return factories, failures

    return LifespanManagers(state, collect=collect)


async def _send(
    sender: type, scope: Mapping[str, Any], state: MutableMapping[str, Any], tracker: Tracker
) -> tuple[list[Factory], list[Failure]]:
    """Call every ``asgi_lifespan`` receiver; what each returns is a manager factory."""
    if not asgi_lifespan.receivers:
        return [], []
    # Django 5.0+ splits the live receivers into sync and async ones.
    sync_receivers, async_receivers = asgi_lifespan._live_receivers(sender)  # noqa: SLF001
    factories: list[Factory] = []
    failures: list[Failure] = []
    for receiver in [*sync_receivers, *async_receivers]:
        step = f"asgi_lifespan receiver {qualified_name(receiver)!r}"
        call = receiver if iscoroutinefunction(receiver) else sync_to_async(receiver)
        with tracker.step(step):
            try:
                factory = await call(signal=asgi_lifespan, sender=sender, scope=scope, state=state)
            except Exception as error:
                logger.exception("The %s failed.", step)
                failures.append(Failure(step, error))
                continue
        if not callable(factory):
            reason = (
                f"returned {type(factory).__name__}, not a lifespan manager factory (a "
                "zero-argument callable giving an async context manager that yields a mapping)"
            )
            failures.append(Failure(step, reason=reason))
            continue
        factories.append(factory)
    return factories, failures
