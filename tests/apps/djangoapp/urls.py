from django.urls import path

from djangoapp import views

urlpatterns = [
    path("light", views.light),
    path("medium", views.medium),
    path("heavy", views.heavy),
    path("racy", views.racy),
    path("asyncview", views.asyncview),
    path("stats", views.stats),
]
