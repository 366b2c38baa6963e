"""A URLconf importing a view module whose marker names a provider the container lacks."""

from __future__ import annotations

from django.urls import path

from tests import views_typo

urlpatterns = [path("typo", views_typo.typo)]
