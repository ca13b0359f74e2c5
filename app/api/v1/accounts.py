"""/api/v1/accounts: the token's own account (with source) and its profile edits, lookup and one
account by id.

`update_credentials` goes through the same ProfileSettingsService as the web's settings page, so
a change sends the actor's Update to followers exactly as saving that page does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import CredentialSource, credential_account_entity
from app.api.form_values import flag
from app.api.ids import path_id
from app.api.params import Params, WrongType, request_params
from app.api.v1.account_views import account_with_counts
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest
from app.models import Account, User
from app.services.account_lookup import account_by_acct, account_by_id
from app.services.profile_settings import (
    MAX_FIELDS,
    MAX_UPLOAD_BYTES,
    POSTING_PRIVACY,
    PostingDefaults,
    ProfileChanges,
    ProfileSettingsService,
)
from app.services.relationships import waiting_requests_count

router = APIRouter(prefix="/api/v1/accounts")
public_read = scoped("read", "read:accounts", optional=True)
# Two pictures and a few fields: anything larger is not a profile edit.
MAX_PROFILE_BODY = 2 * MAX_UPLOAD_BYTES + 256 * 1024


async def _credential_answer(context: AppContext, account: Account, user: User) -> JSONResponse:
    source = CredentialSource(
        privacy=user.default_privacy,
        sensitive=user.default_sensitive,
        language=user.default_language,
        follow_requests_count=await waiting_requests_count(context, account),
    )
    entity = credential_account_entity(context, account, source)
    counted = await account_with_counts(context, account)
    entity.update(followers_count=counted["followers_count"], following_count=counted["following_count"])
    return JSONResponse(entity)


@router.get("/verify_credentials")
async def verify_credentials(
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", "profile", user=True)),
) -> JSONResponse:
    viewer = caller.viewer
    assert viewer.account is not None and viewer.user is not None
    # For an organisation token: the organisation account, which everything the token does acts as.
    return await _credential_answer(context, viewer.account, viewer.user)


def _nested(params: Params, form_name: str, json_name: str) -> Any:
    """`source[privacy]` in a form, `{"source": {"privacy": …}}` in JSON."""
    if form_name in params:
        return params[form_name]
    outer, _, inner = json_name.partition(".")
    container = params.get(outer)
    if container is None:
        return None
    if not isinstance(container, dict):
        raise WrongType(f'{outer}: must be an object such as {{"{inner}": …}}')
    return container.get(inner)


def _fields(params: Params) -> list[tuple[str, str]] | None:
    """`fields_attributes[0][name]` in a form; an array or an object of {name, value} in JSON."""
    given = params.get("fields_attributes")
    if given is None:
        pairs: dict[int, dict[str, str]] = {}
        for key, value in params.items():
            if key.startswith("fields_attributes[") and isinstance(value, str):
                index, _, rest = key.removeprefix("fields_attributes[").partition("]")
                name = rest.strip("[]")
                if not index.isdigit() or name not in ("name", "value"):
                    raise WrongType(f"{key[:60]}: not a profile field")
                pairs.setdefault(int(index), {})[name] = value
        if not pairs:
            return None
        items: list[Any] = [pairs[index] for index in sorted(pairs)]
    elif isinstance(given, list):
        items = given
    elif isinstance(given, dict):
        items = [given[key] for key in sorted(given, key=lambda key: int(key) if str(key).isdigit() else 0)]
    else:
        raise WrongType("fields_attributes: must be a list of {name, value}")
    if len(items) > MAX_FIELDS:
        raise WrongType(f"fields_attributes: at most {MAX_FIELDS} fields")
    fields = []
    for item in items:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key, ""), str) for key in ("name", "value")
        ):
            raise WrongType("fields_attributes: each field has a name and a value, both strings")
        fields.append((item.get("name", ""), item.get("value", "")))
    return fields


async def _profile_params(request: Request) -> tuple[Params, dict[str, UploadFile]]:
    """The edit's values and its pictures: a multipart form carries files, which the API's
    general parameter reader (small bodies only) leaves out."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        return await request_params(request), {}
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_PROFILE_BODY:
        raise BadRequest("request body too large")
    form: FormData = await request.form(max_files=2, max_fields=100)
    params = Params({key: value for key, value in request.query_params.items()})
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key in ("avatar", "header") and value.filename:
                files[key] = value
        else:
            params[key] = value
    return params, files


def _text_or_none(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        raise WrongType(f"{name}: must be a string")
    return params.text(name)


@router.patch("/update_credentials")
async def update_credentials(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts", user=True)),
) -> JSONResponse:
    viewer = caller.viewer
    assert viewer.account is not None and viewer.user is not None
    params, files = await _profile_params(request)
    service = ProfileSettingsService(context, viewer=viewer)
    account = viewer.account
    current = service.form(account)

    display_name = _text_or_none(params, "display_name")
    note = _text_or_none(params, "note")
    fields = _fields(params)
    locked = flag(params, "locked", None)
    bot = flag(params, "bot", None)
    discoverable = flag(params, "discoverable", None)
    indexable = flag(params, "indexable", None)
    if any(value is not None for value in (display_name, note, fields, locked, bot, discoverable, indexable)):
        changes = ProfileChanges(
            display_name=display_name if display_name is not None else current.display_name,
            bio=note if note is not None else current.bio,
            fields=fields if fields is not None else [(name, value) for name, value, _ in current.fields],
            locked=locked if locked is not None else current.locked,
            discoverable=discoverable if discoverable is not None else current.discoverable,
            aliases=current.aliases,
            bot=bot,
            indexable=indexable,
        )
        account = await service.update(account.id, changes)
    for kind, upload in files.items():
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        account = await service.set_picture(account.id, kind, data)

    privacy = _nested(params, "source[privacy]", "source.privacy")
    if privacy is not None and privacy not in POSTING_PRIVACY:
        raise WrongType(f"source[privacy]: must be one of {', '.join(POSTING_PRIVACY)}")
    sensitive = _nested(params, "source[sensitive]", "source.sensitive")
    language = _nested(params, "source[language]", "source.language")
    if language is not None and not isinstance(language, str):
        raise WrongType("source[language]: must be a language code")
    user = viewer.user
    if privacy is not None or sensitive is not None or language is not None:
        user = await service.set_posting_defaults(
            user.id,
            PostingDefaults(
                privacy=POSTING_PRIVACY[privacy] if privacy is not None else None,
                sensitive=flag(Params(sensitive=sensitive), "sensitive", None)
                if sensitive is not None
                else None,
                language=language,
            ),
        )
    return await _credential_answer(context, account, user)


@router.get("/lookup")
async def lookup(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    acct = request.query_params.get("acct", "")
    if not acct.strip() or len(acct) > 600:
        raise BadRequest("acct: missing")
    account = await account_by_acct(context, caller.viewer, acct)
    return JSONResponse(await account_with_counts(context, account))


@router.get("/{account_id}")
async def show(
    account_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    return JSONResponse(await account_with_counts(context, account))


__all__ = ["router"]
