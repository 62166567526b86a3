from django.urls import path

from wallet.transactions.http import refunds, views

urlpatterns = [
    path("deposits", views.DepositCreateApi.as_view(), name="deposit-create"),
    path("deposits/<uuid:transaction_id>", views.DepositDetailApi.as_view(), name="deposit-detail"),
    path("withdrawals", views.WithdrawalCreateApi.as_view(), name="withdrawal-create"),
    path("withdrawals/<uuid:transaction_id>", views.WithdrawalDetailApi.as_view(), name="withdrawal-detail"),
    path("balance", views.BalanceApi.as_view(), name="balance"),
    path("balance/entries", views.BalanceEntryListApi.as_view(), name="balance-entries"),
    path("transactions", views.TransactionListApi.as_view(), name="transaction-list"),
    path(
        "transactions/<uuid:transaction_id>", views.TransactionDetailApi.as_view(), name="transaction-detail"
    ),
    path(
        "admin/deposits/<uuid:transaction_id>/refunds",
        refunds.DepositRefundCreateApi.as_view(),
        name="admin-deposit-refund-create",
    ),
    path(
        "admin/refunds/<uuid:refund_id>/approve",
        refunds.RefundApproveApi.as_view(),
        name="admin-refund-approve",
    ),
    path(
        "admin/refunds/<uuid:refund_id>/reject",
        refunds.RefundRejectApi.as_view(),
        name="admin-refund-reject",
    ),
]
