"""The demo shop's pages: the Mini App's menu and its order endpoint."""

from django.urls import path

from project.shop import views

app_name = "shop"
urlpatterns = [
    path("<str:bot_name>/menu/", views.menu, name="menu"),
    path("<str:bot_name>/order/", views.place_order, name="order"),
]
