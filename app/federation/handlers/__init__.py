"""Inbox handlers, one module per family of activities; `dispatch` routes an activity to its handler."""

from __future__ import annotations

# What the inbox stores for the worker; other types are answered 202 and dropped on arrival.
HANDLED_TYPES = frozenset(
    {
        "Follow",
        "Accept",
        "Reject",
        "Undo",
        "Create",
        "Update",
        "Delete",
        "Announce",
        "Like",
        "EmojiReact",
        "Block",
        "Flag",
        "Move",
        "Add",
        "Remove",
    }
)
