"""The probe views under one prefix: ``path("health/", include("lifespan_container.urls"))``.

=========  ====================  =====================================
``""``     ``health``            every resource's health check
``live``   ``liveness``          the process answers
``ready``  ``readiness``         startup completed, shutdown not begun
=========  ====================  =====================================

The names are in the ``lifespan_container`` namespace:
``reverse("lifespan_container:readiness")``.
"""

from __future__ import annotations

from django.urls import path

from lifespan_container import views

app_name = "lifespan_container"

urlpatterns = [
    path("", views.health, name="health"),
    path("live", views.liveness, name="liveness"),
    path("ready", views.readiness, name="readiness"),
]
