"""How a failed look-up of another server's account is said to staff, in their language.

The two common cases (the server could not be reached, the account does not exist) get
sentences of their own; anything else is the resolver's own message, already meant for people.
"""

from __future__ import annotations

from fastapi import Request

from app.activitypub.resolver import ResolveError
from app.i18n import N_
from app.web.templating import translate


def lookup_error(request: Request, error: ResolveError) -> str:
    if error.unreachable:
        return translate(request, N_("%(host)s could not be reached."), host=error.unreachable)
    if error.missing:
        return translate(request, N_("%(handle)s does not exist."), handle=error.missing)
    return str(error)
