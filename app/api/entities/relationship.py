"""Mastodon's Relationship entity, and the Report entity that names an account."""

from __future__ import annotations

from typing import Any

from app.api.entities.account import account_entity
from app.api.entities.common import api_id, api_time
from app.context import AppContext
from app.models import Report
from app.services.relationships import Relationship


def relationship_entity(relation: Relationship) -> dict[str, Any]:
    return {
        "id": api_id(relation.target.id),
        "following": relation.following,
        "showing_reblogs": relation.showing_reblogs,
        "notifying": relation.notifying,
        "languages": relation.languages,
        "followed_by": relation.followed_by,
        "blocking": relation.blocking,
        "blocked_by": relation.blocked_by,
        "muting": relation.muting,
        "muting_notifications": relation.muting_notifications,
        "requested": relation.requested,
        "requested_by": relation.requested_by,
        "domain_blocking": relation.domain_blocking,
        "endorsed": relation.endorsed,
        "note": relation.note,
    }


def report_entity(context: AppContext, report: Report, target: Any) -> dict[str, Any]:
    return {
        "id": api_id(report.id),
        "action_taken": report.resolved_at is not None,
        "action_taken_at": api_time(report.resolved_at),
        "category": report.category,
        "comment": report.comment,
        "forwarded": report.forwarded,
        "created_at": api_time(report.created_at),
        "status_ids": [str(post_id) for post_id in report.post_ids] or None,
        "rule_ids": [str(rule_id) for rule_id in report.rule_ids] or None,
        "target_account": account_entity(context, target),
    }


__all__ = ["relationship_entity", "report_entity"]
