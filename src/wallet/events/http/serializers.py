from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from wallet.events.models import DeliveryStatus


class EndpointCreateInputSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(max_length=2000, help_text="https URL of the client backend's receiver.")
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=50,
        help_text='Event types or families ("refund.*") to receive; empty or absent means every type.',
    )
    enabled = serializers.BooleanField(required=False)


class EndpointUpdateInputSerializer(EndpointCreateInputSerializer):
    url = serializers.CharField(max_length=2000, required=False)


class EndpointOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    secret_rotated_at = serializers.DateTimeField(allow_null=True)
    previous_secret_retires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="While a rotation's grace period runs, the old secret also signs until then.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretOutputSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret; shown only in this response.")


class DeliveryFilterSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event_id = serializers.UUIDField(required=False)


class AttemptOutputSerializer(serializers.Serializer[Any]):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    response_excerpt = serializers.CharField()
    error = serializers.CharField()
    succeeded = serializers.BooleanField()


class DeliveryOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    event_id = serializers.UUIDField()
    event_type = serializers.CharField(source="event.type")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    replays = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    recent_attempts = serializers.SerializerMethodField()

    @extend_schema_field(AttemptOutputSerializer(many=True))
    def get_recent_attempts(self, delivery: Any) -> list[dict[str, Any]]:
        rows = getattr(delivery, "attempts_newest", [])[:10]
        return list(AttemptOutputSerializer(rows, many=True).data)


class ReplayInputSerializer(serializers.Serializer[Any]):
    # created_after first: a time range is the common case (the receiver was down for a while).
    created_after = serializers.DateTimeField(
        required=False, help_text="Replay events created at or after this."
    )
    created_before = serializers.DateTimeField(required=False, help_text="...and before this.")
    event_id = serializers.UUIDField(required=False, help_text="Or replay this one event.")


class ReplayOutputSerializer(serializers.Serializer[Any]):
    queued = serializers.IntegerField(help_text="Deliveries queued to be sent again.")
