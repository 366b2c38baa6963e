from django.urls import include, path

from weather import upstream, views

urlpatterns = [
    path("health/", include("lifespan_container.urls")),  # live, ready, and every check
    path("", views.index),
    path("weather/<str:city>", views.forecast),
    path("stations/", views.StationList.as_view()),
    path("report", views.report),
    path("api/stations/<str:code>", views.StationDetail.as_view()),
    path("visits", views.visits),
    path("visits.csv", views.visits_csv),
    path("upstream/forecast/<str:city>", upstream.forecast),
]
