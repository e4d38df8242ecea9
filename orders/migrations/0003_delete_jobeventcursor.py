from django.db import migrations
from django.db.models import Max
from django.utils import timezone


def mark_followed_events(apps, schema_editor):
    """Events the cursor had already passed were followed (webhooks sent, orders updated):
    mark them so. Later ones stay pending and are followed once by the new follower."""
    JobEventCursor = apps.get_model("orders", "JobEventCursor")
    JobEvent = apps.get_model("production", "JobEvent")
    cursor = JobEventCursor.objects.filter(name="orders").first()
    if cursor is not None:
        upto = cursor.last_event_id
    else:  # never followed: do not send a flood of old webhooks now
        upto = JobEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    JobEvent.objects.filter(pk__lte=upto, followed_at__isnull=True).update(
        followed_at=timezone.now()
    )


class Migration(migrations.Migration):
    # Orders follow job events by claiming each one (JobEvent.followed_at), not with a cursor.
    dependencies = [
        ("orders", "0002_teams_status_quotes_webhooks"),
        ("production", "0009_job_event_followed_at"),
    ]

    operations = [
        migrations.RunPython(mark_followed_events, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="JobEventCursor",
        ),
    ]
