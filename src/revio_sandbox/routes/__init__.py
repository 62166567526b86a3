"""The sandbox's HTTP routes, one module per surface: the gateway API (gateway.py), the EFT payments API
(eft.py), the hosted checkout page (checkout.py), the control API (control.py) and its dashboard
(dashboard.py). ``revio_sandbox.app.create_app`` puts them together."""
