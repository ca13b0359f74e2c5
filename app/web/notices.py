"""One-line confirmations shown after a form was handled (POST, then redirect, then this message).

Only the keys below can be shown, so a crafted link cannot put words on the page.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi.responses import RedirectResponse

from app.i18n import N_

NOTICES = {
    "welcome": N_("Welcome! You are logged in."),
    "logged_out": N_("You have logged out."),
    "setup_done": N_("Your administrator account is ready. Log in with the name and password you chose."),
    "password_set": N_("Your password is set. You can log in now."),
    "posted": N_("Your post was published."),
    "edited": N_("Your post was updated."),
    "deleted": N_("The post was deleted."),
    "boosted": N_("Boosted."),
    "unboosted": N_("Boost withdrawn."),
    "liked": N_("Liked."),
    "unliked": N_("Like withdrawn."),
    "pinned": N_("Pinned to the profile."),
    "unpinned": N_("Unpinned from the profile."),
    "followed": N_("You now follow this account."),
    "follow_requested": N_("Follow request sent. It shows as pending until the account accepts it."),
    "unfollowed": N_("You no longer follow this account."),
    "approved": N_("Follow request approved."),
    "rejected": N_("Follow request rejected."),
    "saved": N_("Your changes were saved."),
    "announced": N_("The announcement was published. Apps show it while it is in force."),
    "announcement_withdrawn": N_("The announcement was withdrawn."),
    "password_changed": N_("Your password was changed. Other sessions were logged out."),
    "staff_created": N_("The account was created. Send the invite link below to its owner."),
    "role_changed": N_("The role was changed."),
    "disabled": N_("The login was disabled and its sessions ended."),
    "enabled": N_("The login was enabled again."),
    "granted": N_("Posting right granted."),
    "revoked": N_("Posting right revoked."),
    "retried": N_("Deliveries to this domain will be tried again now."),
    "domain_blocked": N_("The domain block was saved."),
    "domain_unblocked": N_("The domain block was lifted. New activity from the domain is accepted again."),
    "domains_imported": N_("The domain blocks were imported."),
    "domain_allowed": N_("The allowlist was changed."),
    "blocked": N_("Blocked. Follows between you ended and the account's server was told."),
    "unblocked": N_("Unblocked."),
    "muted": N_("Muted. Its posts stay out of your home timeline."),
    "unmuted": N_("Unmuted."),
    "reported": N_("Reported to the administrators of this server."),
    "report_resolved": N_("The report was marked as resolved."),
    "signed_up": N_("Your account is ready. Log in with the name and password you chose."),
    "signed_up_pending": N_(
        "Thank you. An administrator will look at your sign-up; you can log in once it is approved."
    ),
    "sign_up_approved": N_("The sign-up was approved; the account can log in now."),
    "sign_up_rejected": N_("The sign-up was rejected and deleted."),
}


def redirect(target: str, notice: str | None = None, **params: str) -> RedirectResponse:
    """A 303 redirect (the browser follows with GET) to a local path, with a notice key."""
    assert notice is None or notice in NOTICES
    parts = urlsplit(target)
    query = [part for part in parts.query.split("&") if part and not part.startswith("notice=")]
    extra = {key: value for key, value in params.items() if value}
    if notice:
        extra["notice"] = notice
    if extra:
        query.append(urlencode(extra))
    return RedirectResponse(
        urlunsplit(("", "", parts.path, "&".join(query), parts.fragment)), status_code=303
    )
