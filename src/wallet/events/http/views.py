"""The admin API for outgoing events: endpoints, their secrets, their deliveries, and replay."""

import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallet.accounts import public as accounts
from wallet.core.errors import NotFoundError
from wallet.core.http.pagination import NewestFirstCursorPagination
from wallet.core.http.throttling import client_ip
from wallet.events import endpoints, selectors, services
from wallet.events.errors import EndpointUrlRefusedError, EventNotFoundError
from wallet.events.http import serializers as s
from wallet.events.models import EventEndpoint


def _validated(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _endpoint_payload(endpoint: EventEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    now = timezone.now()
    data = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "secret_rotated_at": endpoint.secret_rotated_at,
        "previous_secret_retires_at": endpoints.secret_retires_at(endpoint, now=now),
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }
    if secret is None:
        return dict(s.EndpointOutputSerializer(data).data)
    return dict(s.EndpointWithSecretOutputSerializer({**data, "secret": secret}).data)


class EventEndpointListApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    pagination_class = NewestFirstCursorPagination  # also tells the schema the list is paginated
    documented_errors = (EndpointUrlRefusedError,)

    @extend_schema(tags=["admin"], responses={200: s.EndpointOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.endpoint_list(), request, view=self) or []
        return paginator.get_paginated_response([_endpoint_payload(e) for e in page])

    @extend_schema(
        tags=["admin"],
        request=s.EndpointCreateInputSerializer,
        responses={201: s.EndpointWithSecretOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.EndpointCreateInputSerializer, request.data)
        created = endpoints.endpoint_create(
            **data, now=timezone.now(), actor=request.user, ip=client_ip(request)
        )
        return Response(
            _endpoint_payload(created.endpoint, secret=created.secret), status=status.HTTP_201_CREATED
        )


class EventEndpointDetailApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    documented_errors = (EndpointUrlRefusedError,)

    @extend_schema(tags=["admin"], responses={200: s.EndpointOutputSerializer})
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
        if endpoint is None:
            raise NotFoundError()
        return Response(_endpoint_payload(endpoint))

    @extend_schema(
        tags=["admin"], request=s.EndpointUpdateInputSerializer, responses={200: s.EndpointOutputSerializer}
    )
    def patch(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        data = _validated(s.EndpointUpdateInputSerializer, request.data)
        endpoint = endpoints.endpoint_update(
            endpoint_id=endpoint_id, **data, now=timezone.now(), actor=request.user, ip=client_ip(request)
        )
        return Response(_endpoint_payload(endpoint))

    @extend_schema(tags=["admin"], responses={204: None})
    def delete(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        endpoints.endpoint_delete(
            endpoint_id=endpoint_id, now=timezone.now(), actor=request.user, ip=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class EventEndpointRotateSecretApi(APIView):
    permission_classes = (accounts.IsAdminRole,)

    @extend_schema(tags=["admin"], request=None, responses={200: s.EndpointWithSecretOutputSerializer})
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        rotated = endpoints.endpoint_rotate_secret(
            endpoint_id=endpoint_id, now=timezone.now(), actor=request.user, ip=client_ip(request)
        )
        return Response(_endpoint_payload(rotated.endpoint, secret=rotated.secret))


class EventDeliveryListApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    pagination_class = NewestFirstCursorPagination

    @extend_schema(
        tags=["admin"],
        parameters=[s.DeliveryFilterSerializer],
        responses={200: s.DeliveryOutputSerializer(many=True)},
    )
    def get(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        filters = _validated(s.DeliveryFilterSerializer, request.query_params)
        if selectors.endpoint_get(endpoint_id=endpoint_id) is None:
            raise NotFoundError()
        rows = selectors.delivery_list(endpoint_id=endpoint_id, **filters)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(s.DeliveryOutputSerializer(page, many=True).data)


class EventReplayApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    documented_errors = (EventNotFoundError,)

    @extend_schema(tags=["admin"], request=s.ReplayInputSerializer, responses={200: s.ReplayOutputSerializer})
    def post(self, request: Request, endpoint_id: uuid.UUID) -> Response:
        data = _validated(s.ReplayInputSerializer, request.data)
        queued = services.event_replay(
            endpoint_id=endpoint_id, **data, now=timezone.now(), actor=request.user, ip=client_ip(request)
        )
        return Response(s.ReplayOutputSerializer({"queued": queued}).data)
