# A clearer name: DialogContext.stack is the stack row; this is aiogram_dialog's stack id.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("botdialogs", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(
            model_name="dialogcontext",
            old_name="stack_key",
            new_name="aiogd_stack_id",
        ),
        migrations.AlterField(
            model_name="dialogcontext",
            name="aiogd_stack_id",
            field=models.CharField(
                blank=True,
                help_text="aiogram_dialog's id of the stack this dialog was opened in "
                "(the stack row itself is the stack field).",
                max_length=255,
                verbose_name="aiogram_dialog stack id",
            ),
        ),
    ]
