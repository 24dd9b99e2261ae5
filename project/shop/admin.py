from django.contrib import admin

from project.shop.models import Order


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "telegram_user_id", "status", "created_at"]
    list_filter = ["status"]
    list_editable = ["status"]
    search_fields = ["=telegram_user_id"]
