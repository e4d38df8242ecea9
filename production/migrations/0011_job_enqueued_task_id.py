from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("production", "0010_job_claim"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="enqueued_task_id",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
