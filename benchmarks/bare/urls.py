"""The bare baseline's only URL: POST /tpcb runs one TPC-B transaction."""

from django.urls import path

from benchmarks.bare.views import TpcbApi

urlpatterns = [path("tpcb", TpcbApi.as_view())]
