from django.urls import path

from tests.dal_project.test_app import views

urlpatterns = [
    path("client-from-app-config", views.client_from_app_config),
    path("client-from-scope-state", views.client_from_scope_state),
]
