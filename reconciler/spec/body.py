"""One spec message -> the exact `POST /v4/schedules` body, checking each field. Pure.

Every check whose input is present runs, so a message reports all its problems at once; problems
are collected as Issues anchored at the spec key (or defaults entry) they came from.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler import engagelab as api
from reconciler.canonical import canonical_json
from reconciler.schedule_body import kind_of_trigger
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredSchedule, SourceRef
from reconciler.spec.diagnostics import Issue
from reconciler.spec.model import REQUIRED, Message, SpecFile
from reconciler.spec.rules import check_audience, check_trigger
from reconciler.spec.templates import TemplateBook


@dataclass(slots=True)
class _Builder:
    """Checks one message field by field, collecting issues instead of stopping at the first."""

    message: Message
    issues: list[Issue]
    failed: bool = False

    def fail(self, key: str, rest: tuple[str | int, ...], what: str, hint: str) -> None:
        self.failed = True
        where = self.message.where(key, *rest)
        self.issues.append(Issue(self.message.file, where, _named(self.message, what), hint))


def _named(message: Message, what: str) -> str:
    """Problems of one series value point at the shared block: say which value it was."""
    if message.series_value is None:
        return what
    return f"{what} (series value #{message.series_value + 1}: {message.name})"


def build_schedule(
    spec: SpecFile,
    message: Message,
    book: TemplateBook,
    settings: Settings,
    now: datetime,
    issues: list[Issue],
) -> tuple[DesiredSchedule, bool] | None:
    """The schedule for one message and whether it is live (holds quota), or None on problems."""
    fields = message.fields
    b = _Builder(message, issues)
    for key in REQUIRED:
        if fields.get(key) is None:
            b.failed = True
            if key in message.broken:
                continue
            issues.append(
                Issue(
                    message.file,
                    message.path,
                    f"missing key {key!r}",
                    f"set {key} in this message or in defaults",
                )
            )
    languages, default_language = _languages(b) if fields.get("languages") else ([], "")
    platforms = _platforms(b)
    trigger, is_live = None, False
    if fields.get("trigger") is not None:
        trigger, window_issues, is_live = check_trigger(fields["trigger"], settings, now)
        for rest, what, hint, warning in window_issues:
            b.failed |= not warning
            where = message.where("trigger", *rest)
            issues.append(Issue(message.file, where, _named(message, what), hint, warning=warning))
    to = _audience(b) if fields.get("audience") is not None else None
    options = _options(b, spec.plan_id)
    copy = book.render(message, languages) if languages and fields.get("template") else None
    if b.failed or platforms is None or to is None or trigger is None or copy is None:
        return None
    notification = _notification(b, platforms, copy[default_language])
    for lang in languages:
        if lang != default_language:
            copy[lang] = _multi_language_copy(message, lang, copy[lang], book, issues)
    others = {lang: copy[lang] for lang in languages if lang != default_language}
    if others:
        options["multi_language"] = api.multi_language(others)
    custom_args = dict(fields.get("custom_args") or {})
    custom_args[api.MANAGED_BY_KEY] = api.MANAGED_BY_VALUE
    push = {
        "from": api.PUSH_FROM,
        "to": to,
        "body": {"platform": platforms, "notification": notification, "options": options},
        "request_id": api.request_id_for(message.name),
        "custom_args": custom_args,
    }
    if b.failed:
        return None
    push_json = canonical_json(push)
    # api.body_size(push), without serializing twice, plus the owner marker apply adds.
    size = len(push_json) + api.OWNER_MARKER_BYTES
    if size > api.BODY_MAX_BYTES:
        issues.append(
            Issue(
                message.file,
                message.path,
                f"push body of {message.name!r} is {size} bytes as sent "
                f"({api.OWNER_MARKER_BYTES} of them the owner marker apply adds)",
                f"at most {api.BODY_MAX_BYTES} bytes: shorten the copy or split languages",
            )
        )
        return None
    enabled = bool(fields.get("enabled", True))
    body = {"name": message.name, "enabled": enabled, "trigger": trigger, "push": push}
    schedule = DesiredSchedule(
        name=message.name,
        plan_id=spec.plan_id,
        body=body,
        digest=_body_digest(body, push_json),
        trigger_kind=kind_of_trigger(trigger),
        copy={lang: copy[lang] for lang in languages},
        default_language=default_language,
        template=str(fields["template"]),
        source=SourceRef(message.file, *message.mark),
    )
    return schedule, enabled and is_live


def _multi_language_copy(
    message: Message, lang: str, copy: dict[str, str], book: TemplateBook, issues: list[Issue]
) -> dict[str, str]:
    """Keep what multi_language can carry; warn about per-platform copy that would be dropped."""
    dropped = sorted(k for k in copy if k not in api.MULTI_LANGUAGE_FIELDS)
    rel = f"templates/{message.fields['template']}/{lang}.yaml"
    if dropped and book.first_time(rel, "dropped"):
        issues.append(
            Issue(
                rel,
                tuple(dropped[0].split(".")),
                f"{', '.join(dropped)} is not sent for {lang}: multi_language carries only "
                "title and alert",
                "platform copy applies to the default language only; remove it here",
                warning=True,
            )
        )
    return {k: v for k, v in copy.items() if k in api.MULTI_LANGUAGE_FIELDS}


def _body_digest(body: Mapping[str, Any], push_json: bytes) -> str:
    """canonical.digest(body), reusing the push's canonical bytes (keys sort as shown)."""
    head = canonical_json({"enabled": body["enabled"], "name": body["name"]})[:-1]
    whole = head + b',"push":' + push_json + b',"trigger":' + canonical_json(body["trigger"]) + b"}"
    return "sha256:" + hashlib.sha256(whole).hexdigest()


def _languages(b: _Builder) -> tuple[list[str], str]:
    fields = b.message.fields
    languages: list[str] = fields["languages"]
    good: list[str] = []
    if not languages:
        b.fail("languages", (), "empty list of languages", "list at least one, e.g. [en]")
    for index, code in enumerate(languages):
        problem = language_problem(code)
        if problem:
            b.fail("languages", (index,), *problem)
        elif code in good:
            b.fail("languages", (index,), f"language {code!r} is listed twice", "list it once")
        else:
            good.append(code)
    default = fields.get("default_language") or (good[0] if good else "")
    if good and default not in good:
        b.fail(
            "default_language",
            (),
            f"{default!r} is not one of the languages",
            f"pick one of {', '.join(good)} or add it to languages",
        )
    return good, default


# Suggested when a code is unknown and no spelling fix applies.
_COMMON_LANGUAGES = ("en", "fr", "es", "de", "pt", "zh", "ja", "ko", "hi", "id", "tl", "ar")


@functools.cache
def language_problem(code: str) -> tuple[str, str] | None:
    """None for an accepted language code, else (what is wrong, what to do)."""
    match = api.LANGUAGE_RE.match(code)
    if match and match.group(1) in api.LANGUAGE_CODES:
        return None
    fixed = re.sub(r"[_ ]", "-", code.strip())
    parts = fixed.split("-")
    guess = "-".join(
        [parts[0].lower(), *(p.title() if len(p) == 4 else p.upper() for p in parts[1:])]
    )
    match = api.LANGUAGE_RE.match(guess)
    if match and match.group(1) in api.LANGUAGE_CODES and guess != code:
        return (f"unknown language code {code!r}", f"did you mean {guess!r}?")
    close = difflib.get_close_matches(code.lower()[:2], _COMMON_LANGUAGES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown language code {code!r}",
        f"{hint}use ISO 639-1 codes such as en, fr, pt-BR, zh-Hans",
    )


def _platforms(b: _Builder) -> str | list[str] | None:
    raw = b.message.fields.get("platform", "all")
    if raw == "all":
        return "all"
    names: list[str] = [raw] if isinstance(raw, str) else raw
    ok = bool(names)
    if not names:
        b.fail("platform", (), "empty platform list", "use all, or list android, ios or hmos")
    for index, name in enumerate(names):
        if name not in api.PLATFORMS:
            ok = False
            rest: tuple[int, ...] = () if isinstance(raw, str) else (index,)
            hint = f"use all, or a list of {', '.join(api.PLATFORMS)}"
            b.fail("platform", rest, f"unknown platform {name!r}", hint)
    return [p for p in api.PLATFORMS if p in names] if ok else None


def _audience(b: _Builder) -> str | dict[str, Any] | None:
    result, problems = check_audience(b.message.fields["audience"])
    for rest, what, hint in problems:
        b.fail("audience", rest, what, hint)
    return result


def _options(b: _Builder, plan_id: str) -> dict[str, Any]:
    fields = b.message.fields
    options: dict[str, Any] = {"plan_id": plan_id}
    ttl = fields.get("time_to_live")
    if ttl is not None:
        if not 0 <= ttl <= api.TIME_TO_LIVE_MAX:
            b.fail(
                "time_to_live",
                (),
                f"time_to_live {ttl} is out of range",
                f"0 to {api.TIME_TO_LIVE_MAX} seconds (10 days)",
            )
        options["time_to_live"] = ttl
    duration = fields.get("big_push_duration")
    if duration is not None:
        if not 1 <= duration <= api.BIG_PUSH_DURATION_MAX:
            b.fail(
                "big_push_duration",
                (),
                f"big_push_duration {duration} is out of range",
                f"1 to {api.BIG_PUSH_DURATION_MAX} minutes",
            )
        options["big_push_duration"] = duration
    if fields.get("apns_production") is not None:
        options["apns_production"] = fields["apns_production"]
    for reserved, why in (
        (api.MANAGED_BY_KEY, "reconcile sets it to mark the schedules it manages"),
        (api.OWNER_KEY, "apply sets it to the owning state's lineage"),
    ):
        if reserved in (fields.get("custom_args") or {}):
            b.fail(
                "custom_args", (reserved,), f"{reserved!r} is reserved", f"{why}; use another key"
            )
    return options


def _notification(
    b: _Builder, platforms: str | list[str], copy: Mapping[str, str]
) -> dict[str, Any]:
    fields = b.message.fields
    targeted = api.PLATFORMS if platforms == "all" else platforms
    extras = fields.get("extras")
    out: dict[str, Any] = {"alert": copy["alert"]}
    for platform in targeted:
        opts: dict[str, Any] = fields.get(platform) or {}
        title = copy.get(f"{platform}.title", copy.get("title", ""))
        alert = copy.get(f"{platform}.alert", copy["alert"])
        section: dict[str, Any]
        if platform == "ios":
            subtitle = copy.get("ios.subtitle")
            if title or subtitle:
                shaped = {"title": title, "subtitle": subtitle, "body": alert}
                section = {"alert": {k: v for k, v in shaped.items() if v}}
            else:
                section = {"alert": alert}
            badge = opts.get("badge")
            if badge is not None and not _badge_ok(badge):
                b.fail(
                    "ios",
                    ("badge",),
                    f"badge {badge!r} is not allowed",
                    "a number such as 5, or a change such as '+1' or '-1'",
                )
            renamed = {"thread_id": "thread-id", "mutable_content": "mutable-content"}
            section |= {renamed.get(k, k): v for k, v in opts.items() if v is not None}
        else:
            section = {"alert": alert}
            if title:
                section["title"] = title
            for key, value in opts.items():
                if value is None:
                    continue
                if key == "intent_url":
                    section["intent"] = {"url": value}
                elif key == "priority" and not _within(value, api.ANDROID_PRIORITY_RANGE):
                    low, high = api.ANDROID_PRIORITY_RANGE
                    b.fail(
                        platform, (key,), f"priority {value} is out of range", f"{low} to {high}"
                    )
                elif key == "badge_add_num" and not _within(value, api.BADGE_ADD_NUM_RANGE):
                    low, high = api.BADGE_ADD_NUM_RANGE
                    what = f"badge_add_num {value} is out of range"
                    b.fail(platform, (key,), what, f"{low} to {high}")
                else:
                    section[key] = value
        if extras:
            section["extras"] = dict(extras)
        out[platform] = section
    return out


def _within(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _badge_ok(badge: int | str) -> bool:
    return bool(api.IOS_BADGE_RE.match(str(badge))) and not isinstance(badge, bool)
