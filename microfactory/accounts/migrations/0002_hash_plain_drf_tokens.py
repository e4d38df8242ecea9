"""The API tokens of DRF's rest_framework.authtoken (kept in clear, table authtoken_token) become
hashed knox tokens that keep working: knox looks a token up by its first 15 characters and
compares the SHA-512 digest of the whole, whatever its length, so an old 40-character key
still authenticates as `Authorization: Token <key>`. The clear-text table is then dropped,
and authtoken's migration records with it (the app is no longer installed)."""

from datetime import UTC, datetime

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.crypto import hash_token
from knox.settings import CONSTANTS

PLAIN_TABLE = "authtoken_token"


def _aware(value: object) -> datetime:
    """SQLite hands a raw cursor text, PostgreSQL a datetime; either may be naive (UTC)."""
    parsed = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime):
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def hash_plain_tokens(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if PLAIN_TABLE not in connection.introspection.table_names():
        return  # a database made after the switch, or DRF's token app was never migrated
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "key", user_id, created FROM {PLAIN_TABLE}')
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        token = ApiToken(
            user_id=user_id,
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            digest=hash_token(key),
            name="API token (from before hashing)",
            expiry=None,
        )
        token.save()
        ApiToken.objects.filter(pk=token.pk).update(created=_aware(created))
    schema_editor.execute(
        schema_editor.sql_delete_table % {"table": schema_editor.quote_name(PLAIN_TABLE)}
    )
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_api_token")]

    # Irreversible: the clear-text keys are gone (that is the point).
    operations = [migrations.RunPython(hash_plain_tokens, migrations.RunPython.noop)]
