"""The bare baselines' URLs: POST /tpcb runs one TPC-B transaction through DRF; GET /ping is plain Django."""

from django.urls import path

from benchmarks.bare.views import TpcbApi, ping

urlpatterns = [path("tpcb", TpcbApi.as_view()), path("ping", ping)]
