# Issue #16 point 5: the processes besides the primary one a revision can be made by.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0008_material_sheet_thicknesses"),
    ]

    operations = [
        migrations.AddField(
            model_name='partrevision',
            name='alternative_processes',
            field=models.JSONField(blank=True, default=list, help_text='other processes it can be made by, e.g. ["cnc_mill", "laser"]'),
        ),
    ]
