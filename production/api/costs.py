"""What a job cost, for the factory's managers and staff (production.costing): GET
/api/v1/jobs/<id>/cost/. The job's factory's operators get 403 (they see no prices); a job
of another factory is 404, as one that does not exist; customers get 403, as for every
machine and job route of the floor."""

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from production import costing, job_costs, tenancy
from production.api.machines import WorksOnAFloor


class CostItemSerializer(serializers.Serializer[costing.CostItem]):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    inputs = serializers.CharField(help_text="how the amount was reached")


class LabourStepSerializer(serializers.Serializer[costing.LabourStep]):
    step = serializers.CharField()
    at = serializers.DateTimeField()
    minutes = serializers.FloatField()
    measured = serializers.BooleanField(
        help_text="the gap to the operator's previous step; false: the fixed touch minutes"
    )


class JobCostSerializer(serializers.Serializer[costing.JobCost]):
    job = serializers.CharField(source="number")
    status = serializers.CharField()
    quantity = serializers.IntegerField()
    scrapped = serializers.IntegerField()
    replaces = serializers.CharField(help_text="the job it remakes; empty for none")
    basis = serializers.ChoiceField(
        choices=[costing.Basis.ACTUAL, costing.Basis.ESTIMATE, costing.Basis.NONE],
        help_text="actual: a machine ran it; estimate: not run yet; none: ended unrun",
    )
    currency = serializers.CharField()
    material = CostItemSerializer()
    machine = CostItemSerializer()
    energy = CostItemSerializer()
    labour = CostItemSerializer()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    scrap = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="the scrapped copies' share"
    )
    planned_time_s = serializers.FloatField(
        help_text="machine time counted: its share of its plates (setup and program), else "
        "the quote's plate plan of its copies"
    )
    actual_time_s = serializers.FloatField(
        allow_null=True, help_text="running time from the job's events (less pauses)"
    )
    labour_minutes = serializers.FloatField()
    labour_steps = LabourStepSerializer(many=True)


class JobCostApi(APIView):
    permission_classes = [WorksOnAFloor]

    @extend_schema(responses=JobCostSerializer, operation_id="job_cost")
    def get(self, request: Request, job_id: int) -> Response:
        get_object_or_404(tenancy.jobs_for_operator(request.user), pk=job_id)
        managed = tenancy.jobs_for_operator(request.user, roles=tenancy.MANAGER_ROLES)
        if not managed.filter(pk=job_id).exists():
            raise PermissionDenied("costs are for the factory's managers")
        (cost,) = job_costs.job_costs(managed.filter(pk=job_id), now=timezone.now())
        data: dict[str, Any] = JobCostSerializer(cost).data
        return Response(data)
