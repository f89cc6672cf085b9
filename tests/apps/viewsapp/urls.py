from django.urls import path

from viewsapp import views

urlpatterns = [
    path("light", views.light),
    path("medium", views.MediumView.as_view()),
    path("heavy", views.heavy),
    path("stats", views.stats),
]
