"""The navigator's one URL."""

from __future__ import annotations

from django.urls import path

from tests.navigator import views

urlpatterns = [path("", views.index, name="index")]
