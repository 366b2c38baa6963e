from django.urls import path

from myproject import views

urlpatterns = [
    path("weather/<str:city>", views.weather),
    path("stations", views.stations),
    path("build", views.build_info),
]
