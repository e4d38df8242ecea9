"""The catalog API: what can be ordered, with each part's parameter schema and materials."""

from django.db.models import Prefetch
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from catalog.models import PartFamily, PartRevision


class RevisionSerializer(serializers.ModelSerializer):
    materials = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)

    class Meta:
        model = PartRevision
        fields = [
            "number",
            "checksum",
            "process",
            "parameter_schema",
            "rules",
            "materials",
            "published_at",
        ]


class PartSerializer(serializers.ModelSerializer):
    revision = serializers.SerializerMethodField()

    class Meta:
        model = PartFamily
        fields = ["slug", "name", "category", "description", "revision"]

    def get_revision(self, family: PartFamily) -> dict | None:
        published = family.published_revisions
        return RevisionSerializer(published[0]).data if published else None


class PartsApi(ListAPIView):
    serializer_class = PartSerializer

    def get_queryset(self):
        revisions = PartRevision.objects.filter(published_at__isnull=False).order_by("-number")
        return PartFamily.objects.filter(retired=False).prefetch_related(
            Prefetch(
                "revisions",
                revisions.prefetch_related("materials"),
                to_attr="published_revisions",
            )
        )
