"""What every start of `herold serve` does once before answering: the instance actor exists, and
an instance without accounts tells on the console where to create the first administrator."""

from __future__ import annotations

import logging

from app.context import AppContext
from app.services.accounts import AccountService

log = logging.getLogger("herold")


async def prepare_instance(context: AppContext, *, announce: bool = True) -> None:
    """Create the instance actor if needed; with `announce`, print the setup line (the address to
    open and the setup token) while there are no accounts yet."""
    accounts = AccountService(context)
    await accounts.instance_actor()
    if announce and await accounts.count_users() == 0:
        log.warning(
            "No accounts yet. Open %s/ and create the first administrator with setup token: %s",
            context.settings.base_url,
            context.setup_token,
        )
