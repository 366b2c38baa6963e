"""The container's ``providers.Configuration`` filled from Django settings and the environment.

The app creates the container, so ``container.config.from_dict(...)`` has no home
in the project: this module is it. When the process's container is created
(once, before any resource opens and before ``manage.py check`` reads the
markers), each configuration gets its values:

.. code-block:: python

    # settings.py
    GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN")
    WEATHER = {"api_url": "https://api.example.com", "timeout": "5"}

    LIFESPAN_CONTAINER = {
        "CONTAINER": "myproject.containers.Container",
        # The default (no key, or None): every providers.Configuration at the top
        # of the container gets every upper-case setting, as
        # config.from_dict(settings.__dict__) would.
        "CONFIGURATION": {
            "config": "settings",  # config.GITHUB_TOKEN
            "weather": ["settings:WEATHER", "env:WEATHER_"],  # weather.api_url, weather.timeout
        },
    }

Sources, applied in order (a later one wins for the same option):

``"settings"``
    every upper-case Django setting, under its own name;
``"settings:NAME"``
    the dict ``settings.NAME``, its keys as the options;
``"env:PREFIX"``
    every environment variable starting with ``PREFIX``, named by the rest in
    lower case, ``__`` separating levels (``WEATHER_DB__PORT`` -> ``db.port``).

``manage.py check`` reports a key naming no configuration (E011) and a
``.required()`` option (or any option of a ``Configuration(strict=True)``) that
has no value (E012), naming the setting or variable it would come from.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from dependency_injector import errors, providers
from django.conf import settings

from lifespan_container._settings import SETTING, Problem, check_id, parse_source, raw
from lifespan_container.engine.graph import configuration_of, provider_paths, walk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dependency_injector import containers

__all__ = ["configuration_problems", "fill_configuration"]

Source = tuple[str, str]


def sources(container: containers.Container) -> dict[str, list[Source]]:
    """Each configuration path of ``container`` -> its sources, in order."""
    value = raw()
    mapping = value.get("CONFIGURATION") if isinstance(value, dict) else None
    if mapping is None:
        return {
            name: [("settings", "")]
            for name, provider in container.providers.items()
            if isinstance(provider, providers.Configuration)
        }
    found: dict[str, list[Source]] = {}
    for path, given in mapping.items():
        listed = given if isinstance(given, list | tuple) else [given]
        found[path] = [source for source in map(parse_source, listed) if source is not None]
    return found


def fill_configuration(container: containers.Container) -> None:
    """Give each configuration of ``container`` its values from settings and environment.

    Without ``CONFIGURATION``, the settings go *underneath* what the container class
    already gave a configuration (``default=``, ``yaml_files=``...): those values win.
    Sources the project names in ``CONFIGURATION`` are applied over them, in order.
    """
    value = raw()
    underneath = not (isinstance(value, dict) and value.get("CONFIGURATION") is not None)
    for path, listed in sources(container).items():
        configuration = walk(container, path)
        if not isinstance(configuration, providers.Configuration):
            continue  # reported by manage.py check (E011)
        own = configuration() if underneath else None
        for source in listed:
            configuration.from_dict(_values(source))
        if own:
            configuration.from_dict(own)


def _values(source: Source) -> dict[str, Any]:
    kind, argument = source
    if kind == "env":
        values: dict[str, Any] = {}
        for name, text in os.environ.items():
            if name.startswith(argument) and len(name) > len(argument):
                *parents, leaf = name[len(argument) :].lower().split("__")
                node = values
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = text
        return values
    if argument:
        mapping = getattr(settings, argument, None)
        return dict(mapping) if isinstance(mapping, dict) else {}
    # The project's own settings only: Django's defaults are not configuration. A
    # setting Django deprecates warns when read; the project set it, so it is read.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return {
            name: getattr(settings, name)
            for name in dir(settings)
            if name.isupper() and settings.is_overridden(name)  # type: ignore[misc]
        }


def configuration_problems(container: containers.Container) -> list[Problem]:
    """E011: a ``CONFIGURATION`` key names no configuration; E012: a required option is unset."""
    found: list[Problem] = []
    listed = sources(container)
    for path in listed:
        if not isinstance(walk(container, path), providers.Configuration):
            names = [
                name
                for provider, name in provider_paths(container.providers).items()
                if isinstance(provider, providers.Configuration)
            ]
            found.append(
                Problem(
                    check_id("E011"),
                    f'settings.{SETTING}["CONFIGURATION"] names {path!r}, which is not a '
                    "providers.Configuration of the container.",
                    f"Use the attribute name of one: {', '.join(map(repr, names)) or 'none'}.",
                )
            )
    for root_path, selector, root in _required_options(container):
        lookup: Any = root.get
        try:
            lookup(selector, True)  # noqa: FBT003 (required=True; the stub lacks it)
        except errors.Error:
            origin = _origin(listed.get(root_path, []), selector)
            found.append(
                Problem(
                    check_id("E012"),
                    f"The configuration option {root_path}.{selector} is required and has "
                    "no value.",
                    f"Set {origin}." if origin else _no_source(root_path),
                )
            )
    return found


def _no_source(root_path: str) -> str:
    return (
        f'None of the sources of {root_path} in settings.{SETTING}["CONFIGURATION"] can '
        'fill it ("settings" fills upper-case names, "env:PREFIX" lower-case ones, '
        '"settings:NAME" any): add one, or give it a value in an AppConfig.ready().'
    )


def _required_options(
    container: containers.Container,
) -> Iterator[tuple[str, str, providers.Configuration]]:
    """``(configuration path, option selector, configuration)`` of every required option."""
    roots = {
        path: provider
        for provider, path in provider_paths(container.providers).items()
        if isinstance(provider, providers.Configuration)
    }
    seen: set[tuple[str, str]] = set()
    for option in container.traverse(types=[providers.ConfigurationOption]):
        selector = option.get_name().partition(".")[2]
        path = configuration_of(option, roots) if selector else None
        if path is None:
            continue
        root = roots[path]
        if (option.is_required() or root.get_strict()) and (path, selector) not in seen:
            seen.add((path, selector))
            yield path, selector, root


def _origin(listed: list[Source], selector: str) -> str:
    """Where the option ``selector`` would get its value from, as the fix names it."""
    first = selector.split(".", maxsplit=1)[0]
    places: list[str] = []
    for kind, argument in listed:
        if kind == "env" and selector == selector.lower():  # variables fill lower-case names
            places.append(
                f"the environment variable {argument}{selector.upper().replace('.', '__')}"
            )
        elif kind == "settings" and argument:
            places.append(f"settings.{argument}[{first!r}]")
        elif kind == "settings" and first.isupper():  # settings fill upper-case names
            places.append(f"settings.{first}")
    return " or ".join(places)
