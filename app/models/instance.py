"""Instance-wide settings that admins change at run time (the environment holds the rest)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.models.base import timestamp


class InstanceSetting(SQLModel, table=True):
    __tablename__ = "instance_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = ""
    updated_at: datetime = timestamp()
