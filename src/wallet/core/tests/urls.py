"""Extra routes used only by the core tests: a view that crashes, one that is throttled, one that is slow."""

import time

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView


class CrashApi(APIView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        raise RuntimeError("boom: internal detail that must not leak")


class OncePerMinuteThrottle(AnonRateThrottle):
    rate = "1/min"
    scope = "core-test"


class ThrottledApi(APIView):
    permission_classes = (AllowAny,)
    throttle_classes = (OncePerMinuteThrottle,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class SlowApi(APIView):
    """Holds its thread for ?ms= milliseconds (at most 2 s), like a request waiting on the database."""

    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        time.sleep(min(int(request.query_params.get("ms", "100")), 2000) / 1000)
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/_test/crash", CrashApi.as_view()),
    path("api/v1/_test/slow", SlowApi.as_view()),
    path("api/v1/_test/throttled", ThrottledApi.as_view()),
    path("", include("config.urls")),
]


def plain_django_crash(request: object) -> None:
    raise RuntimeError("boom outside DRF")


urlpatterns.insert(0, path("plain-crash", plain_django_crash))

handler404 = "wallet.core.http.views.not_found"
handler500 = "wallet.core.http.views.server_error"
