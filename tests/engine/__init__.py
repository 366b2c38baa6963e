"""The Django-free core (resource lifecycle, step runner, lifespan protocol loop), driven
by plain asyncio: no settings, no Django app. These tests pass without pytest-django::

    python -m pytest -p no:django -p no:cacheprovider -o addopts= \
        -W ignore::pytest.PytestConfigWarning tests/engine
"""
