from django.contrib import admin
from pizza.models import Order

admin.site.register(Order, list_display=["id", "telegram_user_id", "status"])
