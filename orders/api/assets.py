"""The asset API (orders.assets): list, read and register the assets of the caller's
organisation, with their spare-parts lists. Another organisation's asset is a 404; a CMMS
finds an asset's id by its tag (?tag=) to order for it (POST /api/v1/orders/ with `asset`)."""

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from microfactory.schema import ErrorSerializer
from orders.api.views import _refuse_oversized
from orders.assets import AssetFields, AssetInvalid, asset_create, assets_for
from orders.models import Asset, AssetPart
from orders.services import NotAllowed


class AssetPartSerializer(serializers.ModelSerializer[AssetPart]):
    part = serializers.CharField(source="revision.family.slug", help_text="part family slug")
    revision = serializers.IntegerField(source="revision.number")
    material = serializers.CharField(source="material.slug")

    class Meta:
        model = AssetPart
        fields = ["id", "part", "revision", "parameters", "material", "quantity", "label"]


class AssetSummarySerializer(serializers.ModelSerializer[Asset]):
    team = serializers.CharField(source="team.slug")
    is_down = serializers.BooleanField()

    class Meta:
        model = Asset
        fields = [
            "id",
            "tag",
            "name",
            "team",
            "location",
            "criticality",
            "downtime_cost_per_hour",
            "is_down",
            "down_since",
        ]


class AssetOutputSerializer(AssetSummarySerializer):
    """One asset, with why it is down and its spare parts."""

    parts = AssetPartSerializer(many=True, help_text="its spare parts: saved configurations")

    class Meta(AssetSummarySerializer.Meta):
        fields = [*AssetSummarySerializer.Meta.fields, "down_reason", "parts"]


class AssetInputSerializer(serializers.Serializer[Any]):  # input only: no instance
    tag = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    location = serializers.CharField(required=False, allow_blank=True, max_length=200)
    criticality = serializers.ChoiceField(choices=Asset.Criticality.choices, required=False)
    downtime_cost_per_hour = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False, help_text="EUR per hour"
    )


def _assets(user: object) -> QuerySet[Asset]:
    parts = AssetPart.objects.select_related("revision__family", "material")
    return assets_for(user).prefetch_related(Prefetch("parts", parts)).order_by("tag", "pk")


class AssetsApi(GenericAPIView[Asset]):
    serializer_class = AssetSummarySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="the asset tag, exactly"),
            OpenApiParameter("team", str, description="the team's slug"),
        ],
        responses=AssetSummarySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        assets = assets_for(request.user).order_by("tag", "pk")
        if tag := request.query_params.get("tag"):
            assets = assets.filter(tag=tag)
        if team := request.query_params.get("team"):
            assets = assets.filter(team__slug=team)
        page = self.paginate_queryset(assets)
        return self.get_paginated_response(AssetSummarySerializer(page, many=True).data)

    @extend_schema(
        request=AssetInputSerializer,
        responses={
            201: OpenApiResponse(AssetOutputSerializer, description="The asset, registered."),
            400: OpenApiResponse(
                ErrorSerializer, description="A field is wrong, or the team has that tag."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        """Register an asset for the caller's team (members without a team: 403)."""
        _refuse_oversized(request)
        payload = AssetInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        fields = AssetFields(
            tag=data["tag"],
            name=data["name"],
            location=data.get("location", ""),
            criticality=data.get("criticality", Asset.Criticality.MEDIUM),
            downtime_cost_per_hour=str(data.get("downtime_cost_per_hour", "0")),
        )
        try:
            asset = asset_create(user=request.user, fields=fields)
        except NotAllowed as refusal:
            raise PermissionDenied(str(refusal)) from refusal
        except AssetInvalid as invalid:
            return Response({"message": str(invalid), "errors": invalid.errors}, status=400)
        return Response(AssetOutputSerializer(_assets(request.user).get(pk=asset.pk)).data, 201)


class AssetDetailApi(APIView):
    @extend_schema(responses=AssetOutputSerializer)
    def get(self, request: Request, asset_id: int) -> Response:
        asset = get_object_or_404(_assets(request.user), pk=asset_id)
        return Response(AssetOutputSerializer(asset).data)
