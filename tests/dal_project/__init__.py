"""A Django project like django-asgi-lifespan's test project, served by our library.

The suite in ``tests/dal_suite`` runs against it (``DJANGO_SETTINGS_MODULE=
tests.dal_project.settings``) to show the library is a drop-in replacement for
django-asgi-lifespan 0.5.x: only the import names differ.
"""
