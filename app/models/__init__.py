"""All tables; importing this module registers them on SQLModel.metadata (Alembic and tests rely on it)."""

from app.models.accounts import Account, AccountDelegate, ActorType, Role, User, WebSession
from app.models.announcements import Announcement, AnnouncementDismissal, AnnouncementReaction
from app.models.client_state import Bookmark, ConversationMute, IdempotencyKey, Marker
from app.models.conversations import ConversationMark
from app.models.emojis import RemoteEmoji
from app.models.federation import (
    DeliveryJob,
    DomainHealth,
    InboxItem,
    JobState,
    OutboxActivity,
    WorkerHeartbeat,
)
from app.models.filters import ContentFilter, FilterAction, FilterContext, FilterKeyword, FilterStatus
from app.models.hashtags import FeaturedTag, FollowedTag
from app.models.instance import InstanceSetting
from app.models.jobs import BackgroundJob
from app.models.lists import ListMember, RepliesPolicy, UserList
from app.models.moderation import AuditLogEntry, BlockSeverity, DomainAllow, DomainBlock, Report
from app.models.notifications import Notification, NotificationType, PushSubscription
from app.models.oauth import OAuthAccessToken, OAuthApplication, OAuthAuthorizationCode
from app.models.posts import (
    Favourite,
    MediaAttachment,
    MediaState,
    Mention,
    Pin,
    Poll,
    PollVote,
    Post,
    PostEdit,
    PostTag,
    Reaction,
    Tag,
    TimelineEntry,
    Visibility,
)
from app.models.social import AccountBlock, AccountMute, AccountNote, Follow, FollowState, UserDomainBlock

__all__ = [
    "Account",
    "AccountBlock",
    "AccountDelegate",
    "AccountMute",
    "AccountNote",
    "ActorType",
    "Announcement",
    "AnnouncementDismissal",
    "AnnouncementReaction",
    "AuditLogEntry",
    "BackgroundJob",
    "BlockSeverity",
    "Bookmark",
    "ContentFilter",
    "ConversationMark",
    "ConversationMute",
    "DeliveryJob",
    "DomainAllow",
    "DomainBlock",
    "DomainHealth",
    "Favourite",
    "FeaturedTag",
    "FilterAction",
    "FilterContext",
    "FilterKeyword",
    "FilterStatus",
    "Follow",
    "FollowState",
    "FollowedTag",
    "IdempotencyKey",
    "InboxItem",
    "InstanceSetting",
    "JobState",
    "ListMember",
    "Marker",
    "MediaAttachment",
    "MediaState",
    "Mention",
    "Notification",
    "NotificationType",
    "OAuthAccessToken",
    "OAuthApplication",
    "OAuthAuthorizationCode",
    "OutboxActivity",
    "Pin",
    "Poll",
    "PollVote",
    "Post",
    "PostEdit",
    "PostTag",
    "PushSubscription",
    "Reaction",
    "RemoteEmoji",
    "RepliesPolicy",
    "Report",
    "Role",
    "Tag",
    "TimelineEntry",
    "User",
    "UserDomainBlock",
    "UserList",
    "Visibility",
    "WebSession",
    "WorkerHeartbeat",
]
