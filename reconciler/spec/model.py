"""The spec and template file languages: pydantic models of their structure, defaults, series. Pure.

Pydantic checks keys and types only (typos, wrong types, unknown enum values). Rules on values
that a series may substitute (times, names, audience limits) run later, in spec_body/spec_rules.
Messages leave this module as plain dicts: bodies are built without pydantic, which keeps 10,000
messages cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reconciler import engagelab as api
from reconciler.settings import CheckLevel
from reconciler.spec.diagnostics import Issue, issues_from, kind_of
from reconciler.spec.yamlsrc import Path

Scalar = str | int | float | bool


# --- models ---------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlanModel(_Model):
    id: str
    description: str = ""


class SmartModel(_Model):
    backup_time: str


class SingleModel(_Model):
    time: str
    zone: Literal["site", "device"]


class PeriodicalModel(_Model):
    start: str
    end: str
    time: str
    unit: Literal["day", "week", "month"]
    frequency: int = 1
    points: list[str | int] | None = None
    zone: Literal["site", "device"]


class TriggerModel(_Model):
    smart: SmartModel | None = None
    single: SingleModel | None = None
    periodical: PeriodicalModel | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TriggerModel:
        kinds = [k for k in ("smart", "single", "periodical") if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = " and ".join(kinds) or "none"
            raise ValueError(
                f"a trigger has exactly one kind, got {got}; use smart, single or periodical"
            )
        return self


class AudienceModel(_Model):
    all: bool | None = None
    tag: list[str] | None = None
    tag_and: list[str] | None = None
    tag_not: list[str] | None = None
    alias: list[str] | None = None
    registration_id: list[str] | None = None
    segment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _all(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data != "all":
                raise ValueError(
                    f"{data[:40]!r} is not an audience; use all, or a mapping such as {{tag: [US]}}"
                )
            return {"all": True}
        return data

    @model_validator(mode="after")
    def _combination(self) -> AudienceModel:
        used = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if self.all is False:
            raise ValueError("all: false selects nobody; name tags, aliases, ids or a segment")
        exclusive = ["all", *("segment" if k == "seg" else k for k in api.AUDIENCE_ALONE)]
        alone = [k for k in used if k in exclusive]
        if alone and len(used) > 1:
            others = ", ".join(k for k in used if k != alone[0])
            raise ValueError(f"{alone[0]} cannot be combined with {others}; use one audience kind")
        if used == ["tag_not"]:
            raise ValueError("tag_not alone excludes without including; add tag or tag_and")
        if not used:
            raise ValueError("empty audience; use all, or name tags, aliases, ids or a segment")
        return self


class AndroidModel(_Model):
    channel_id: str | None = None
    priority: int | None = None
    category: str | None = None
    sound: str | None = None
    intent_url: str | None = None
    badge_add_num: int | None = None


class IosModel(_Model):
    sound: str | None = None
    badge: int | str | None = None
    thread_id: str | None = None
    category: str | None = None
    mutable_content: bool | None = None


class HmosModel(_Model):
    category: str | None = None
    intent_url: str | None = None
    badge_add_num: int | None = None


class FieldsModel(_Model):
    """Everything a message may set, and `defaults` may set for all messages of the file."""

    template: str | None = None
    vars: dict[str, Any] | None = None
    trigger: TriggerModel | None = None
    audience: AudienceModel | None = None
    platform: str | list[str] | None = None
    languages: list[str] | None = None
    default_language: str | None = None
    time_to_live: int | None = None
    extras: dict[str, Scalar] | None = None
    custom_args: dict[str, Scalar] | None = None
    enabled: bool | None = None
    apns_production: bool | None = None
    big_push_duration: int | None = None
    android: AndroidModel | None = None
    ios: IosModel | None = None
    hmos: HmosModel | None = None


class MessageModel(FieldsModel):
    name: str
    series: list[dict[str, Scalar] | Scalar] | None = None


CheckId = Literal[
    "backup_passed", "quiet_hours", "min_gap", "placeholder_copy", "empty_title", "copy_length"
]  # == settings.CHECK_IDS


class FileModel(_Model):
    plan: PlanModel
    checks: dict[CheckId, CheckLevel] | None = None  # this campaign's send-time check levels
    defaults: dict[str, Any] | None = None  # checked on its own, so bad defaults hide nothing
    messages: list[Any] = Field(default_factory=list)


class PlatformCopyModel(_Model):
    title: str | None = None
    alert: str | None = None


class IosCopyModel(PlatformCopyModel):
    subtitle: str | None = None


class TemplateModel(_Model):
    title: str | None = None
    alert: str
    android: PlatformCopyModel | None = None
    ios: IosCopyModel | None = None
    hmos: PlatformCopyModel | None = None


MERGED_MAPPINGS = frozenset({"vars", "extras", "custom_args", "android", "ios", "hmos"})
REQUIRED = ("template", "trigger", "audience", "languages")  # after defaults are merged


# --- files, defaults and series -------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """One schedule-to-be: merged fields (plain data) and where each field came from."""

    file: str
    name: str
    fields: dict[str, Any]
    origin: dict[str, Path]  # field -> path of the mapping that set it ("defaults" or message)
    path: Path  # ("messages", i)
    series_value: int | None = None  # index into `series`, for messages from a series
    mark: tuple[int, int] = (1, 1)
    broken: frozenset[str] = frozenset()  # defaults dropped as invalid (already reported)

    def where(self, key: str, *rest: str | int) -> Path:
        return (*self.origin.get(key, self.path), key, *rest)


@dataclass(slots=True)
class SpecFile:
    file: str
    plan_id: str
    description: str
    plan_mark: tuple[int, int]
    messages: list[Message] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)  # check id -> level, from `checks:`


def parse_file(
    file: str, raw: Any, marks: Mapping[Path, tuple[int, int]], issues: list[Issue]
) -> SpecFile | None:
    """Check one spec file's structure and expand it into messages; append issues found."""
    if not isinstance(raw, dict):
        issues.append(
            Issue(
                file, (), f"the file holds {kind_of(raw)}", "expected a mapping with plan, messages"
            )
        )
        return None
    try:
        top = FileModel.model_validate(raw)
    except ValidationError as error:
        issues.extend(issues_from(error, file, (), FileModel, raw))
        return None
    defaults: dict[str, Any] = dict(top.defaults or {})
    broken: frozenset[str] = frozenset()
    try:
        FieldsModel.model_validate(defaults)
    except ValidationError as error:
        issues.extend(issues_from(error, file, ("defaults",), FieldsModel, defaults))
        # Go on without the bad keys, so the messages' own problems are reported too.
        broken = frozenset(str(e["loc"][0]) for e in error.errors() if e["loc"])
        defaults = {k: v for k, v in defaults.items() if k not in broken}
    spec = SpecFile(file, top.plan.id, top.plan.description, marks.get(("plan", "id"), (1, 1)))
    spec.checks = {str(k): str(v) for k, v in (top.checks or {}).items()}
    for index, item in enumerate(top.messages):
        path: Path = ("messages", index)
        if not isinstance(item, dict):
            issues.append(Issue(file, path, f"got {kind_of(item)}", "expected a message mapping"))
            continue
        dropped: frozenset[str] = frozenset()
        try:
            MessageModel.model_validate(item)
        except ValidationError as error:
            issues.extend(issues_from(error, file, path, MessageModel, item))
            # Check the rest of the message too, minus the bad keys (which must not fall back
            # to defaults); without a usable name or series there is nothing left to check.
            locs = [e["loc"] for e in error.errors()]
            dropped = frozenset(str(loc[0]) for loc in locs if loc)
            if not all(locs) or dropped & {"name", "series"} or "name" not in item:
                continue
            item = {k: v for k, v in item.items() if k not in dropped}
        mark = marks.get(path, (1, 1))
        if len(spec.messages) >= MAX_MESSAGES_PER_FILE:
            issues.append(
                Issue(
                    file,
                    path,
                    f"more than {MAX_MESSAGES_PER_FILE} messages in one spec file",
                    "split the campaign into several files",
                )
            )
            break
        for message in _expand(file, defaults, item, path, mark, issues):
            for key in dropped:
                message.fields.pop(key, None)
            message.broken = broken | dropped
            spec.messages.append(message)
    return spec


def _merge(defaults: Mapping[str, Any], item: Mapping[str, Any], path: Path) -> Message:
    fields: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for key, value in defaults.items():
        fields[key] = value
        origin[key] = ("defaults",)
    for key, value in item.items():
        if key in ("name", "series"):
            continue
        if key in MERGED_MAPPINGS and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
        origin[key] = path
    return Message("", str(item["name"]), fields, origin, path)


# [ours] Bounds on expansion: a spec from a pull request must not make CI build millions of
# schedules (each costs memory and render time) before the quota check can refuse them.
MAX_SERIES_VALUES = 1000
MAX_MESSAGES_PER_FILE = 10_000

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(
    file: str,
    defaults: Mapping[str, Any],
    item: Mapping[str, Any],
    path: Path,
    mark: tuple[int, int],
    issues: list[Issue],
) -> list[Message]:
    base = _merge(defaults, item, path)
    base.file, base.mark = file, mark
    series = item.get("series")
    if series is None:
        return [base]
    if not series:
        issues.append(Issue(file, (*path, "series"), "empty series", "list at least one value"))
        return []
    if len(series) > MAX_SERIES_VALUES:
        issues.append(
            Issue(
                file,
                (*path, "series"),
                f"{len(series)} series values, more than {MAX_SERIES_VALUES}",
                "split the series into several message blocks",
            )
        )
        return []
    out: list[Message] = []
    for number, value in enumerate(series):
        values: dict[str, Scalar] = value if isinstance(value, dict) else {"item": value}
        missing: set[str] = set()

        def sub(text: str, values: dict[str, Scalar] = values, missing: set[str] = missing) -> str:
            def one(match: re.Match[str]) -> str:
                key = match.group(1)
                if key not in values:
                    missing.add(key)
                    return match.group(0)
                return str(values[key])

            return _PLACEHOLDER.sub(one, text)

        fields = {k: _substitute(v, sub) for k, v in base.fields.items() if k != "vars"}
        fields["vars"] = {**(base.fields.get("vars") or {}), **values}
        message = Message(
            file, sub(base.name), fields, base.origin, path, series_value=number, mark=mark
        )
        if missing:
            names = ", ".join(sorted(missing))
            issues.append(
                Issue(
                    file,
                    (*path, "series", number),
                    f"series value #{number + 1} has no {names} for the {{{names}}} placeholder",
                    f"add {names} to every series value, or remove the placeholder",
                )
            )
            continue
        out.append(message)
    return out


def _substitute(value: Any, sub: Any) -> Any:
    if isinstance(value, str):
        return sub(value)
    if isinstance(value, dict):
        return {k: _substitute(v, sub) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, sub) for v in value]
    return value


def parse_template(file: str, raw: Any, issues: list[Issue]) -> dict[str, Any] | None:
    """Check one template language file; returns its plain mapping when well formed."""
    if not isinstance(raw, dict):
        issues.append(
            Issue(file, (), f"the file holds {kind_of(raw)}", "expected title/alert keys")
        )
        return None
    try:
        TemplateModel.model_validate(raw)
    except ValidationError as error:
        issues.extend(issues_from(error, file, (), TemplateModel, raw))
        return None
    return raw
