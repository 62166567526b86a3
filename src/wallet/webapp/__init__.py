"""The reference wallet page: a plain HTML/CSS/JS frontend that uses only the public API (ADR 0010)."""
