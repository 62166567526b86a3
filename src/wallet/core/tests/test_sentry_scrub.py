"""Sentry events lose bank account numbers and credentials before they leave the process."""

from wallet.observability.sentry import FILTERED, before_breadcrumb, before_send

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJl"


class TestBeforeSend:
    def test_scrubs_headers_bodies_and_frame_variables(self) -> None:
        event = {
            "request": {
                "headers": {
                    "Authorization": f"Bearer {JWT}",
                    "X-Signature": "base64signature==",
                    "Content-Type": "application/json",
                },
                "data": {
                    "amount": 5000,
                    "refresh": JWT,
                    "bank_account": {"account_holder": "A", "account_number": "62812345678"},
                },
                "query_string": "token=abc123&page=2",
            },
            "exception": {
                "values": [
                    {
                        "stacktrace": {
                            "frames": [{"vars": {"access": JWT, "account_number": "62812345678", "n": 3}}]
                        }
                    }
                ]
            },
            "extra": {"note": f"payout to 62812345678 failed; header was Bearer {JWT}"},
        }

        scrubbed = before_send(event, {})  # type: ignore[arg-type]

        request = scrubbed["request"]
        assert request["headers"]["Authorization"] == FILTERED
        assert request["headers"]["X-Signature"] == FILTERED
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["data"]["refresh"] == FILTERED
        assert request["data"]["bank_account"] == FILTERED
        assert request["data"]["amount"] == 5000
        assert request["query_string"] == f"token={FILTERED}&page=2"
        frame_vars = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
        assert frame_vars == {"access": FILTERED, "account_number": FILTERED, "n": 3}
        assert "62812345678" not in str(scrubbed)
        assert JWT not in str(scrubbed)

    def test_header_pairs_and_breadcrumbs_are_scrubbed_too(self) -> None:
        event = {"request": {"headers": [["Authorization", "Bearer x"], ["Accept", "*/*"]]}}
        assert before_send(event, {})["request"]["headers"] == [  # type: ignore[arg-type,index]
            ["Authorization", FILTERED],
            ["Accept", "*/*"],
        ]
        crumb = {"message": f"POST /api/v1/auth/token/refresh {JWT}", "data": {"password": "hunter22"}}
        scrubbed = before_breadcrumb(crumb, {})
        assert JWT not in scrubbed["message"]
        assert scrubbed["data"]["password"] == FILTERED

    def test_ids_amounts_and_uuids_survive(self) -> None:
        event = {"extra": {"transaction": "0b7a2c8e-1f4d-4a5b-9c3d-2e1f0a9b8c7d", "amount": 123456}}
        assert before_send(event, {}) == event  # type: ignore[arg-type,comparison-overlap]

    def test_camel_case_keys_and_short_account_numbers_are_scrubbed(self) -> None:
        """F11: Revio's EFT API says accountNumber (camelCase), and South African account numbers can be
        6 or 7 digits; both went to Sentry as they were."""
        event = {
            "extra": {
                "payload": {
                    "accountNumber": "62812345678",
                    "debtorAccountNumber": "1234567",
                    "Account-Number": "7654321",
                    "clientSecret": "eft-client-secret",
                    "accessToken": "opaque-token",
                },
                "note": "EFT to account 1234567 (branch 250655) refused; retry with 654321",
                "url": "https://eft.example/payments?accountNumber=1234567&page=2",
            }
        }
        scrubbed = before_send(event, {})  # type: ignore[arg-type]
        payload = scrubbed["extra"]["payload"]
        assert set(payload.values()) == {FILTERED}
        assert "1234567" not in str(scrubbed)
        assert "654321" not in str(scrubbed)
        assert scrubbed["extra"]["url"] == f"https://eft.example/payments?accountNumber={FILTERED}&page=2"
