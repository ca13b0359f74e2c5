"""Shapes every entity shares: ids as strings of digits, times with milliseconds in UTC."""

from __future__ import annotations

from datetime import datetime

from app.services.timelines import api_timestamp


def api_id(value: int | None) -> str | None:
    return str(value) if value is not None else None


def api_time(moment: datetime | None) -> str | None:
    """`2026-12-07T10:00:00.000Z`: apps (Ivory among them) parse exactly this."""
    return api_timestamp(moment) if moment is not None else None


__all__ = ["api_id", "api_time"]
