"""Every URL this instance mints, in one place, so ids stay stable and identical everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from app.config import Settings


@dataclass(frozen=True)
class LocalUrls:
    base: str
    local_domain: str
    web_domain: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalUrls:
        return cls(base=settings.base_url, local_domain=settings.local_domain, web_domain=settings.web_domain)

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{quote(username)}"

    def key_id(self, username: str) -> str:
        return f"{self.actor(username)}#main-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def featured(self, username: str) -> str:
        return f"{self.actor(username)}/collections/featured"

    def featured_tags(self, username: str) -> str:
        return f"{self.actor(username)}/collections/tags"

    def profile_page(self, username: str) -> str:
        return f"{self.base}/@{quote(username)}"

    def post(self, username: str, post_id: int) -> str:
        return f"{self.actor(username)}/statuses/{post_id}"

    def post_activity(self, username: str, post_id: int) -> str:
        return f"{self.post(username, post_id)}/activity"

    def post_page(self, username: str, post_id: int) -> str:
        return f"{self.profile_page(username)}/{post_id}"

    def activity(self, username: str, activity_id: int) -> str:
        """Activities that are not a post's Create (Follow, Like, Undo, Accept...)."""
        return f"{self.actor(username)}#activities/{activity_id}"

    def tag(self, name: str) -> str:
        return f"{self.base}/tags/{quote(name.lower())}"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    @property
    def instance_actor(self) -> str:
        return f"{self.base}/actor"

    @property
    def instance_key_id(self) -> str:
        return f"{self.instance_actor}#main-key"

    @property
    def authorize_interaction(self) -> str:
        return f"{self.base}/authorize_interaction?uri={{uri}}"
