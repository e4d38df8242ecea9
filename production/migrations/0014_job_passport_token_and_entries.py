import secrets

from django.db import migrations, models

import production.models


def give_each_job_its_own_token(apps, schema_editor):
    """AddField evaluates a callable default once for every existing row: give each job its
    own token instead, so one passport URL never opens another's."""
    Job = apps.get_model("production", "Job")
    batch = []
    for job in Job.objects.only("pk").iterator(chunk_size=2000):
        job.passport_token = secrets.token_urlsafe(16)
        batch.append(job)
        if len(batch) == 2000:
            Job.objects.bulk_update(batch, ["passport_token"])
            batch = []
    if batch:
        Job.objects.bulk_update(batch, ["passport_token"])


class Migration(migrations.Migration):
    dependencies = [
        ("production", "0013_site_operator_and_default_factory"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="passport_token",
            field=models.CharField(default="", editable=False, max_length=32),
            preserve_default=False,
        ),
        migrations.RunPython(give_each_job_its_own_token, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="job",
            name="passport_token",
            field=models.CharField(
                default=production.models.new_passport_token, editable=False, max_length=32
            ),
        ),
        migrations.CreateModel(
            name="PassportEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveIntegerField(help_text="0 for the first entry")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("script", "revision script"),
                            ("model", "revision model file"),
                            ("parameters", "canonical parameters"),
                            ("step", "STEP model"),
                            ("stl", "STL mesh"),
                            ("svg", "SVG drawing"),
                            ("dfm_report", "DFM report"),
                            ("repaired", "repaired STL mesh"),
                            ("gcode", "G-code"),
                            ("traveler", "traveler PDF"),
                        ],
                        max_length=12,
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                (
                    "sha256",
                    models.CharField(help_text="sha256 of the input or file", max_length=64),
                ),
                ("prev_chain_hash", models.CharField(max_length=64)),
                (
                    "chain_hash",
                    models.CharField(
                        help_text="sha256(prev_chain_hash + kind + sha256)", max_length=64
                    ),
                ),
                (
                    "public_key",
                    models.CharField(
                        help_text="Ed25519 public key that signed (hex)", max_length=64
                    ),
                ),
                (
                    "signature",
                    models.CharField(help_text="Ed25519 signature (hex)", max_length=128),
                ),
                ("created_at", models.DateTimeField()),
                (
                    "job",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE,
                        related_name="passport_entries",
                        to="production.job",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "passport entries",
                "ordering": ["job", "seq"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("job", "seq"), name="one_passport_entry_per_place"
                    ),
                    models.UniqueConstraint(
                        fields=("job", "kind"), name="one_passport_entry_per_kind"
                    ),
                ],
            },
        ),
    ]
