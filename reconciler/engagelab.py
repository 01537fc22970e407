"""What this project knows and assumes about the EngageLab AppPush v4 API, in one place.

Pure constants and tiny pure helpers. Every value is tagged like ../shared/engagelab-api.md:
[doc] documented, [sdk] what the official SDKs do, [v3] JPush v3 behaviour, [ours] our decision
where nothing public settles it. Change an [ours] line here, and only here, when the truth is known.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

# --- connection -----------------------------------------------------------------------------
DATA_CENTERS: Final[Mapping[str, str]] = {  # [doc] sgp usva defra hk; [sdk] jpn bra
    "sgp": "https://pushapi-sgp.engagelab.com",
    "usva": "https://pushapi-usva.engagelab.com",
    "defra": "https://pushapi-defra.engagelab.com",
    "hk": "https://pushapi-hk.engagelab.com",
    "jpn": "https://pushapi-jpn.engagelab.com",
    "bra": "https://pushapi-bra.engagelab.com",
}
DEFAULT_DATA_CENTER: Final = "sgp"  # [doc] Singapore is the default
ENV_APP_KEY: Final = "ENGAGELAB_APP_KEY"  # [ours]
ENV_MASTER_SECRET: Final = "ENGAGELAB_MASTER_SECRET"  # noqa: S105  [ours] a name, not a secret
RATE_LIMIT_PER_SECOND: Final = 500  # [doc] per AppKey, shared by every tool using it
RETRYABLE_HTTP_STATUS: Final = frozenset({429, 502, 503, 504})  # [doc]
RETRYABLE_CODES: Final = frozenset({23008, 21030, 27000})  # [doc] rate limited, timeout, internal

# --- error codes ----------------------------------------------------------------------------
CODE_MISSING_FIELD: Final = 21002  # [doc]
CODE_BAD_VALUE: Final = 21003  # [doc]
CODE_AUTH_FAILED: Final = 21004  # [doc]
CODE_BODY_TOO_LARGE: Final = 21005  # [doc]
CODE_BAD_APP_KEY: Final = 21008  # [doc]
CODE_VALIDATION: Final = 21015  # [doc] (21016 also validation)
CODE_INTERNAL_TIMEOUT: Final = 21030  # [doc]
CODE_NOTIFICATION_AND_MESSAGE: Final = 21306  # [doc]
CODE_BAD_OPTION: Final = 23006  # [doc]
CODE_RATE_LIMITED: Final = 23008  # [doc]
CODE_INTERNAL: Final = 27000  # [doc]
CODE_EMPTY_PLAN_ID: Final = 27303  # [doc]
CODE_NOT_FOUND: Final = 8104  # [v3] schedule-specific v4 codes are unpublished
CODE_QUOTA: Final = 8100  # [v3] "bad request", used for quota refusals [ours]

# --- push plans -----------------------------------------------------------------------------
PLAN_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,49}\Z")  # [doc] no leading _, <= 50
PLAN_ID_MAX: Final = 50  # [doc]
PLAN_DESCRIPTION_MAX: Final = 200  # [doc] "recommended"; we enforce it [ours]
PLAN_QUOTA: Final = 100  # [doc] per AppKey, and plans cannot be deleted

# --- schedules ------------------------------------------------------------------------------
SCHEDULE_NAME_MAX_BYTES: Final = 255  # [doc]
# [doc] letters, digits, _ and CJK. "Letters" read as ASCII letters [ours].
SCHEDULE_NAME_RE: Final = re.compile(
    r"^[A-Za-z0-9_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+\Z"
)
SCHEDULE_QUOTA_DEFAULT: Final = 1000  # [doc] live schedules per AppKey, raised for some accounts
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # [doc] exactly "yyyy-MM-dd HH:mm:ss"
CLOCK_FORMAT: Final = "%H:%M:%S"  # [doc] periodical `time`
HORIZON: Final = timedelta(days=365)  # [doc] "no later than one year ahead"; 365 days [ours]
MIN_LEAD: Final = timedelta(minutes=3)  # [doc] console floor; applied to the API too [ours]
ZONE_SITE: Final = 1  # [doc] the console's time zone
ZONE_DEVICE: Final = 2  # [doc] each device's own time zone
PERIODICAL_UNITS: Final = ("day", "week", "month")  # [doc]
PERIODICAL_FREQUENCY_MAX: Final = 100  # [v3]
WEEK_POINTS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # [v3]
MONTH_POINTS: Final = tuple(f"{d:02d}" for d in range(1, 32))  # [v3]
PERIODICAL_MAX_SPAN: Final = timedelta(days=365)  # [doc] start..end within one year

# --- push body ------------------------------------------------------------------------------
BODY_MAX_BYTES: Final = 4000  # [doc] error 21005
TAG_KINDS: Final = ("tag", "tag_and", "tag_not")  # [doc]
TAGS_MAX: Final = 20  # [v3] per kind
TAG_MAX_BYTES: Final = 40  # [v3]
ALIAS_MAX: Final = 1000  # [doc]
REGISTRATION_ID_MAX: Final = 1000  # [doc]
PLATFORMS: Final = ("android", "ios", "hmos")  # [doc/sdk]
TIME_TO_LIVE_MAX: Final = 10 * 24 * 3600  # [v3] seconds
BIG_PUSH_DURATION_MAX: Final = 1440  # [sdk] minutes
PUSH_FROM: Final = "push"  # [ours] the `from` label, as in EngageLab's own example
MANAGED_BY_KEY: Final = "managed_by"  # [ours] marker added to custom_args
MANAGED_BY_VALUE: Final = "reconcile"  # [ours]


def body_size(push: Mapping[str, Any]) -> int:
    """Bytes counted against the 4000-byte limit.

    [ours] EngageLab does not say which bytes count: we take the whole `push` object as compact
    UTF-8 JSON, which over-counts slightly and so errs on the safe side.
    """
    from reconciler.canonical import canonical_json

    return len(canonical_json(push))


def request_id_for(schedule_name: str) -> str:
    """[ours] A deterministic request_id: echoed back by EngageLab, never a dedup key."""
    return f"reconcile:{schedule_name}"[:128]


def multi_language(copy_by_lang: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """[ours] The inner shape of `options.multi_language` is unpublished.

    We send {"<lang>": {"title": ..., "alert": ...}} and build it here, in exactly one function.
    Empty titles are left out.
    """
    out: dict[str, dict[str, str]] = {}
    for lang in sorted(copy_by_lang):
        copy = copy_by_lang[lang]
        entry = {"alert": copy["alert"]}
        if copy.get("title"):
            entry["title"] = copy["title"]
        out[lang] = entry
    return out


# --- client (appended for the HTTP client, issue #3) ----------------------------------------
ENV_DATA_CENTER: Final = "ENGAGELAB_DATA_CENTER"  # [ours] fallback when --data-center is absent
ENV_BASE_URL: Final = "ENGAGELAB_BASE_URL"  # [ours] explicit base URL (emulator, proxies)
ENV_RATE_LIMIT: Final = "ENGAGELAB_RATE_LIMIT"  # [ours] lower the client's share of the 500/s
# [ours] plain http only to loopback: Basic auth over http would expose the master secret.
PLAIN_HTTP_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
PATH_PUSH_PLAN: Final = "/v4/push_plan"  # [doc]
PATH_PUSH_PLAN_LIST: Final = "/v4/push_plan/list"  # [sdk]
PATH_SCHEDULES: Final = "/v4/schedules"  # [sdk]
PATH_PLAN_DETAIL: Final = "/v4/status/plan/detail"  # [sdk]
PLAN_LIST_PAGE_SIZE: Final = 100  # [sdk] page_size=100 holds the whole 100-plan quota
LIST_MAX_PAGES: Final = 1000  # [ours] stop a listing whose pages never end
SUCCESS_TEXT: Final = "success"  # [sdk] the literal body some mutations answer
NOT_FOUND_CODES: Final = frozenset({CODE_NOT_FOUND})  # [v3] besides HTTP 404
# [ours] A schedule create has no idempotency key, so it is retried only on answers that say the
# request was refused before any work: 429 and 23008 (throttled). Any 5xx, 21030 or 27000 may
# come after the schedule was stored, so a create that gets one is "outcome unknown".
# A schedule PUT follows the same rule (a late first PUT would overwrite a newer one).
CREATE_RETRYABLE_HTTP_STATUS: Final = frozenset({429})  # [ours]
CREATE_RETRYABLE_CODES: Final = frozenset({CODE_RATE_LIMITED})  # [ours]

# --- appended for the emulator and statistics -----------------------------------------------
CODE_SCHEDULE_REFUSED: Final = 8100  # [v3] "bad request"; every schedule-specific refusal [ours]
SCHEDULE_TRIGGER_KINDS: Final = ("single", "periodical", "intelligent")  # [doc]
SCHEDULE_PAGE_SIZE: Final = 50  # [ours] fixed page size of GET /v4/schedules?page=N
PLAN_PAGE_SIZE_MAX: Final = 100  # [ours] largest page_size of GET /v4/push_plan/list
AUDIENCE_KINDS: Final = (  # [doc/sdk] keys allowed in `to`
    "tag",
    "tag_and",
    "tag_not",
    "alias",
    "registration_id",
    "seg",
    "live_activity_id",
)
CID_MAX: Final = 64  # [sdk] options.cid length
STATS_DATE_FORMAT: Final = "%Y-%m-%d"  # [sdk] start_date / end_date
STATS_MAX_SPAN_DAYS: Final = 31  # [ours] as the documented plan/msg listing (span <= 31)
STATS_MAX_PLAN_IDS: Final = 20  # [ours] plan ids per statistics request
STATS_MESSAGE_TYPES: Final = ("notification", "message", "live_activity", "voip", "inapp_message")
STATS_CHANNELS: Final[Mapping[str, tuple[str, ...]]] = {  # [doc/sdk] vendor channels per platform
    "sub_android": (
        "engageLab_android",
        "xiaomi",
        "huawei",
        "honor",
        "meizu",
        "oppo",
        "vivo",
        "fcm",
    ),
    "sub_ios": ("engageLab_ios", "apns"),
    "sub_hmos": ("engageLab_hmos", "harmonyos"),
}
STATS_FUNNEL: Final = ("targets", "sent", "delivered", "impressions", "clicks")  # [doc] order


# --- languages (appended by the spec/render work) --------------------------------------------
# [ours] EngageLab does not publish which language codes `multi_language` accepts. We accept ISO
# 639-1 two-letter codes, optionally followed by a script and/or a region (zh-Hans, pt-BR, es-419).
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
    hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky
    la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny
    oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss
    st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo
    za zh zu
"""
LANGUAGE_CODES: Final = frozenset(_ISO_639_1.split())
LANGUAGE_RE: Final = re.compile(r"^([a-z]{2})(-[A-Z][a-z]{3})?(-[A-Z]{2}|-[0-9]{3})?\Z")  # [ours]
MULTI_LANGUAGE_FIELDS: Final = ("title", "alert")  # [ours] what multi_language() carries
# [ours] JPush v3 intersects audience kinds; we only allow tag kinds together: alias,
# registration_id and seg stand alone, and tag_not needs a tag or tag_and to exclude from.
AUDIENCE_ALONE: Final = ("alias", "registration_id", "seg")
ANDROID_PRIORITY_RANGE: Final = (-2, 2)  # [sdk] Android notification priority
BADGE_ADD_NUM_RANGE: Final = (1, 99)  # [sdk] android/hmos badge_add_num
IOS_BADGE_RE: Final = re.compile(r"^(?:[0-9]{1,5}|[+-][0-9]{1,5})\Z")  # [sdk] 5, "+1" or "-1"

# --- send-time and copy checks ---------------------------------------------------------------
# [ours] What common devices display before truncating, per language, counted in characters:
# a notification title shows about one line; the body about four lines on the iOS lock screen
# (~178 characters) and more in Android's expanded view (~240).
COPY_TITLE_MAX: Final = 50  # [ours]
COPY_ALERT_MAX_IOS: Final = 178  # [ours] applies when iOS (or "all") is a target platform
COPY_ALERT_MAX_ANDROID: Final = 240  # [ours] Android/HarmonyOS only
# [ours] EngageLab warns that vendors may block messages that look like tests; these words, as
# whole words in any case, mark placeholder or test copy.
PLACEHOLDER_WORDS: Final = (
    "test",
    "testing",
    "todo",
    "tbd",
    "fixme",
    "lorem",
    "ipsum",
    "xxx",
    "placeholder",
    "asdf",
)  # [ours]


# --- Smart Push "now" -----------------------------------------------------------------------
# [ours] backup_time "now" sends at once to users with no history; users with history get it at
# their own best moment, over a span EngageLab does not publish. We take a day: until then the
# task counts as still sending (removing it deletes it rather than forgetting it).
SMART_NOW_SPREAD: Final = timedelta(hours=24)


# --- client: outcome-unknown answers, guarded writes, echo rules, timeout (issue 11) ----------
# [ours] A write (schedule create, PUT, DELETE, plan upsert) answered with one of these may have
# been applied: 408 (the server gave up reading, maybe after acting), 409 (a conflict with what
# may be our own earlier copy), 425 (too early: replay refused, the first try may have landed),
# 499 (the client hung up, nginx style: the backend may have finished). Any 5xx or gateway error
# (>= 500) counts too, since it can come after the work was done. A create is still retried only
# on CREATE_RETRYABLE_* (throttled, certainly not applied).
WRITE_OUTCOME_UNKNOWN_HTTP_STATUS: Final = frozenset({408, 409, 425, 499})  # [ours]
WRITE_OUTCOME_UNKNOWN_FROM_STATUS: Final = 500  # [ours] this status and above: outcome unknown
ENV_TIMEOUT: Final = "ENGAGELAB_TIMEOUT"  # [ours] request timeout, seconds (--timeout)
# [ours] An error may repeat a data-center name or a rate only when it is a short plain token
# (what a typo looks like); anything longer may be a pasted secret and is not shown.
ECHO_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,8}\Z")  # [ours]
APP_KEY_FINGERPRINT_HEX: Final = 16  # [ours] hex digits of sha256(app_key) in a fingerprint


def app_key_fingerprint(app_key: str) -> str:
    """[ours] "sha256:" and APP_KEY_FINGERPRINT_HEX hex digits of sha256(app_key): names the
    key (in state, plans, lock info and database keys), never shows it."""
    digest = hashlib.sha256(app_key.encode()).hexdigest()
    return f"sha256:{digest[:APP_KEY_FINGERPRINT_HEX]}"


def echo_token(value: str) -> str | None:
    """[ours] `value` as repr() when an error may show it (ECHO_TOKEN_RE), else None."""
    text = value.strip()
    return repr(text) if ECHO_TOKEN_RE.match(text) else None


def shown_url(value: str) -> str | None:
    """[ours] The part of a URL an error may show: scheme://host[:port], never userinfo, path,
    query or fragment (a token may hide in any of them). None when it has no scheme and host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not parts.scheme or not host or not re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", parts.scheme):
        return None
    netloc = parts.netloc.rpartition("@")[2]  # never the userinfo
    return f"{parts.scheme}://{netloc}"


# --- apply at the edges (issue 11) ----------------------------------------------------------
# [ours] Apply stamps every body it sends with the lineage of the state that owns it, so copies
# made by two state files on one AppKey, or a late copy of our own, can be told apart. It is
# left out of recorded bodies and stripped from remote ones before any comparison.
OWNER_KEY: Final = "reconcile_state"
# The bytes the marker adds to a body (`,"reconcile_state":"<uuid>"`): counted at plan time, so a
# body that fits without it is never refused by EngageLab once apply adds it.
OWNER_MARKER_BYTES: Final = len(f',"{OWNER_KEY}":""') + 36
# [ours] A create whose outcome is unknown may still land this long after its request: several
# times the 10 s request timeout plus the connect timeout. Nothing is created again before then.
CREATE_SETTLE_SECONDS: Final = 120.0
# [ours] How far the API's Date header may be from the local clock before apply refuses to write.
MAX_CLOCK_SKEW_SECONDS: Final = 60.0
# [ours] A saved plan holding a backup_time "now" create expires after this many minutes.
IMMEDIATE_PLAN_MINUTES: Final = 60
# [ours] Smart Push users with activity history get the push "at their own best moment" on the
# day of backup_time, and nothing says that moment is never before backup_time: the gates count
# the whole local day as possibly sending ("local_day"). "backup_time" counts from it only.
SMART_WINDOW: Final = "local_day"

# --- what EngageLab may answer besides what it was sent (issue #13) -------------------------
# [ours] Defaults a server may add to a stored schedule when the request left them out (JPush v3
# and the SDKs fill these in; EngageLab's v4 answer shapes are unpublished). A remote value equal
# to one of these is ignored when the recorded body lacks the field: it is not drift.
# Paths are key tuples into the body; "*" stands for any one key (the trigger kind).
SERVER_DEFAULTS: Final[Mapping[tuple[str, ...], object]] = {
    ("enabled",): True,  # [v3] a task is enabled unless it says otherwise
    ("trigger", "*", "zone_type"): ZONE_SITE,  # [sdk] Go/Java default the console's zone
    ("trigger", "periodical", "frequency"): 1,  # [v3] "every 1 unit" when left out
    ("push", "body", "options", "time_to_live"): 86400,  # [v3] one day, in seconds
}
# [v3] 8100 is also JPush's "schedule request is not exist" (update/delete of a missing task), and
# it is the code of every other schedule refusal: a 400/8100 means "gone" only when the listing
# agrees the id is not there.
CODE_MAYBE_NOT_FOUND: Final = CODE_SCHEDULE_REFUSED
CASE_FOLDED_FIELDS: Final = ("time_unit", "point")  # [v3] case-insensitive; the SDKs send "WEEK"
# [ours] `apns_production` is no default of this table: JPush v3 says production when left out,
# the server SDKs development; a server's filling in is then only "a field never sent".
# [ours] Where a field the state never sent is an edit all the same (drift, compared): who gets
# the message, what it says, and when. Elsewhere an added field is listed, not compared.
ADDED_FIELDS_ARE_EDITS: Final = (
    ("trigger",),
    ("push", "to"),
    ("push", "body", "notification"),
    ("push", "body", "message"),
)
# [ours] Fields reconcile sends that a server need not echo: missing from an answer, not drift.
WRITE_ONLY_FIELDS: Final = (("push", "request_id"), ("push", "custom_args", MANAGED_BY_KEY))
# [doc] 21001 "Only supports HTTP Post method", with HTTP 405 (EngageLab skill error-code table,
# DevEngageLab/engagelab-skills engagelab-apppush/references/error-codes.md).
CODE_WRONG_METHOD: Final = 21001
# [v3] over the rate limit: HTTP 429 with code 2002 "Rate limit exceeded" (JPush REST API
# overview). EngageLab documents 23008 with HTTP 400 (skill error-code table) as well.
CODE_JP3_RATE_LIMITED: Final = 2002
# [doc] codes that come with another HTTP status than 400 (skill error-code table).
STATUS_BY_CODE: Final[Mapping[int, int]] = {CODE_NOTIFICATION_AND_MESSAGE: 401}
