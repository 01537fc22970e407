"""Unit tests for the spec rules: each rule fails on bad input with file:line:col and a fix."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from reconciler import engagelab as api
from reconciler.errors import Problem, SpecError
from reconciler.settings import Settings
from reconciler.spec.desired import DesiredState
from reconciler.spec.loader import Sources, build_desired

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
SPEC = "specs/a.yaml"
TEMPLATES = {
    "templates/t/en.yaml": b"title: Hi\nalert: Hello {{ who }}\n",
    "templates/t/fr.yaml": b"title: Salut\nalert: Bonjour {{ who }}\n",
}

BASE = """\
plan: {id: p1, description: A plan}
defaults:
  template: t
  audience: all
  languages: [en, fr]
  vars: {who: you}
messages:
  - name: m1
    trigger: {smart: {backup_time: "2027-01-10 09:00:00"}}
"""


def sources(
    spec: str = BASE,
    extra: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> Sources:
    specs = {SPEC: textwrap.dedent(spec).encode()}
    specs |= {k: textwrap.dedent(v).encode() for k, v in (extra or {}).items()}
    files = dict(TEMPLATES) | {k: v.encode() for k, v in (templates or {}).items()}
    return Sources(specs, files)


def build(
    spec: str = BASE,
    settings: Settings | None = None,
    extra: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> DesiredState:
    return build_desired(sources(spec, extra, templates), settings or Settings(), NOW)


def problems(
    spec: str = BASE,
    settings: Settings | None = None,
    extra: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        build(spec, settings, extra, templates)
    return [p for p in caught.value.problems if not p.warning]


def one(
    spec: str = BASE,
    settings: Settings | None = None,
    extra: dict[str, str] | None = None,
    templates: dict[str, str] | None = None,
) -> Problem:
    found = problems(spec, settings, extra, templates)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def with_message(extra: str, trigger: str = '{smart: {backup_time: "2027-01-10 09:00:00"}}') -> str:
    """BASE with the message's trigger replaced and `extra` lines added to the message."""
    head = BASE.split("  - name: m1")[0]
    body = f"  - name: m1\n    trigger: {trigger}\n"
    return head + body + "".join(f"    {line}\n" for line in extra.splitlines() if line)


def test_the_base_spec_is_valid() -> None:
    desired = build()
    assert list(desired.schedules) == ["m1"]
    assert desired.schedules["m1"].copy["fr"]["alert"] == "Bonjour you"


def test_unknown_key_points_at_the_key_and_suggests_the_closest() -> None:
    problem = one(with_message("langauges: [en]"))
    assert (problem.file, problem.line, problem.col) == (SPEC, 10, 5)
    assert problem.path == "messages[0].langauges"
    assert "unknown key 'langauges'" in problem.message
    assert "did you mean 'languages'?" in problem.hint


def test_unknown_key_in_a_nested_model_lists_known_keys() -> None:
    problem = one(with_message("android: {chanel_id: promos}"))
    assert problem.path == "messages[0].android.chanel_id"
    assert "channel_id" in problem.hint


def test_wrong_type_says_what_was_expected() -> None:
    problem = one(with_message('time_to_live: "a day"'))
    assert problem.path == "messages[0].time_to_live"
    assert "got text 'a day'" in problem.message
    assert "whole number" in problem.hint


def test_every_error_is_reported_at_once() -> None:
    spec = with_message(
        'time_to_live: 99999999\nplatform: [android, windows]\naudience: {tag: [""]}'
    )
    found = problems(spec)
    paths = sorted(p.path for p in found)
    assert paths == [
        "messages[0].audience.tag[0]",
        "messages[0].platform[1]",
        "messages[0].time_to_live",
    ]
    rendered = str(SpecError(found))
    assert rendered.count("specs/a.yaml:") == 3 and "3 errors in specs" in rendered


def test_missing_required_key_names_where_to_set_it() -> None:
    spec = BASE.replace("  audience: all\n", "")
    problem = one(spec)
    assert "missing key 'audience'" in problem.message and "defaults" in problem.hint
    assert problem.line == 7  # the message that needed it (one line up once audience is gone)


def test_missing_template_suggests_a_close_name() -> None:
    problem = one(
        BASE.replace("template: t", "template: u"), templates={"templates/tx/en.yaml": "alert: x"}
    )
    assert "no template named 'u'" in problem.message
    assert problem.path == "defaults.template"


def test_missing_language_file_names_the_file_to_create() -> None:
    problem = one(BASE.replace("[en, fr]", "[en, fr, de]"))
    assert "has no 'de' copy" in problem.message
    assert "templates/t/de.yaml" in problem.hint


def test_template_name_cannot_escape_templates() -> None:
    for bad in ("../specs", "t/../../etc", "T.yaml", "/abs"):
        problem = one(BASE.replace("template: t", f'template: "{bad}"'))
        assert "is not allowed" in problem.message, bad


def test_undefined_variable_is_reported_in_the_template_file() -> None:
    template = "title: Hi\nalert: |\n  Hello {{ who }},\n  you have {{ count }} messages\n"
    problem = one(templates={"templates/t/fr.yaml": template})
    assert (problem.file, problem.line) == ("templates/t/fr.yaml", 4)
    assert "undefined variable 'count'" in problem.message
    assert "m1" in problem.hint and "vars.count" in problem.hint


def test_template_syntax_error_has_the_template_line() -> None:
    problem = one(templates={"templates/t/en.yaml": "title: Hi\nalert: '{{ who '\n"})
    assert problem.file == "templates/t/en.yaml" and problem.line == 2
    assert "syntax error" in problem.message


def test_template_unknown_key() -> None:
    found = problems(templates={"templates/t/en.yaml": "title: Hi\nalrt: x\n"})
    assert [(p.file, p.line, p.message) for p in found] == [
        ("templates/t/en.yaml", 1, "missing key 'alert'"),
        ("templates/t/en.yaml", 2, "unknown key 'alrt'"),
    ]
    assert found[1].hint == "did you mean 'alert'?"


def test_duplicate_schedule_names_across_files() -> None:
    other = BASE.replace("id: p1", "id: p2")
    problem = one(extra={"specs/b.yaml": other})
    assert problem.file == "specs/b.yaml" and problem.line == 8
    assert "already used in specs/a.yaml" in problem.message


@pytest.mark.parametrize(
    ("plan_id", "expected"),
    [("_hidden", "not a valid plan id"), ("a-b", "not a valid plan id"), ("x" * 51, "not a valid")],
)
def test_plan_id_rules(plan_id: str, expected: str) -> None:
    problem = one(BASE.replace("id: p1", f'id: "{plan_id}"'))
    assert expected in problem.message and problem.path == "plan.id" and problem.line == 1


def test_empty_plan_id_and_long_description() -> None:
    spec = BASE.replace("id: p1, description: A plan", f'id: "", description: {"d" * 201}')
    messages = sorted(p.message for p in problems(spec))
    assert messages == ["description is 201 characters", "empty plan id"]


def test_plan_declared_in_two_files() -> None:
    other = BASE.replace("name: m1", "name: m2")
    problem = one(extra={"specs/b.yaml": other})
    assert problem.file == "specs/b.yaml" and "already declared in specs/a.yaml" in problem.message


def test_plan_quota() -> None:
    other = BASE.replace("id: p1", "id: p2").replace("name: m1", "name: m2")
    problem = one(settings=Settings(plan_quota=1), extra={"specs/b.yaml": other})
    assert problem.file == "specs/b.yaml" and "more than 1 push plans" in problem.message


def test_schedule_quota_counts_live_enabled_schedules_only() -> None:
    spec = BASE + '  - name: m2\n    trigger: {smart: {backup_time: "2027-01-11 09:00:00"}}\n'
    problem = one(spec, settings=Settings(schedule_quota=1))
    assert "quota of 1" in problem.message and problem.line == 10
    disabled = spec + "    enabled: false\n"
    assert len(build(disabled, settings=Settings(schedule_quota=1)).schedules) == 2
    passed = spec.replace("2027-01-11", "2026-01-11")
    assert len(build(passed, settings=Settings(schedule_quota=1)).schedules) == 2


def test_the_owner_marker_apply_adds_counts_against_the_4000_bytes() -> None:
    from reconciler.canonical import canonical_json

    def size(n: int) -> int:
        built = build(templates={"templates/t/en.yaml": "alert: " + "x" * n + "\n"})
        return len(canonical_json(built.schedules["m1"].body["push"]))

    base, per_char = size(1), size(2) - size(1)  # the alert shows in several places
    n = 1 + (4000 - base) // per_char  # the largest alert that fits without the marker
    without = base + (n - 1) * per_char
    assert without <= 4000 < without + api.OWNER_MARKER_BYTES
    problem = one(templates={"templates/t/en.yaml": "alert: " + "x" * n + "\n"})
    assert "owner marker" in problem.message


def test_body_over_4000_bytes() -> None:
    long_alert = "alert: " + "é" * 1990 + "\n"
    problem = one(templates={"templates/t/en.yaml": long_alert})
    assert "push body of 'm1' is" in problem.message and "4000" in problem.hint


def test_schedule_name_rules() -> None:
    assert "is not allowed" in one(BASE.replace("name: m1", "name: m-1")).message
    long_name = "n" * 256
    assert "256 bytes" in one(BASE.replace("name: m1", f"name: {long_name}")).message
    cjk = build(BASE.replace("name: m1", "name: 年末セール_1"))
    assert list(cjk.schedules) == ["年末セール_1"]


@pytest.mark.parametrize(
    "bad",
    [
        "2027-1-10 09:00:00",
        "2027-01-10T09:00:00",
        "2027-01-10 09:00",
        "tomorrow",
        "2027-02-30 09:00:00",
    ],
)
def test_time_format(bad: str) -> None:
    problem = one(with_message("", trigger=f'{{smart: {{backup_time: "{bad}"}}}}'))
    assert problem.path == "messages[0].trigger.smart.backup_time"
    assert "YYYY-MM-DD HH:MM:SS" in problem.hint


def test_unquoted_time_is_read_as_text() -> None:
    desired = build(with_message("", trigger="{smart: {backup_time: 2027-01-10 09:00:00}}"))
    assert desired.schedules["m1"].trigger == {
        "intelligent": {"backup_time": "2027-01-10 09:00:00"}
    }


def test_one_year_horizon_is_an_error() -> None:
    problem = one(with_message("", trigger='{smart: {backup_time: "2027-11-29 12:00:00"}}'))
    assert "more than one year ahead (after 2027-11-29 12:00 UTC)" in problem.message
    assert build(with_message("", trigger='{smart: {backup_time: "2027-11-27 12:00:00"}}'))


def test_passed_send_time_is_a_warning_not_an_error() -> None:
    desired = build(with_message("", trigger='{smart: {backup_time: "2026-01-10 09:00:00"}}'))
    assert [w.path for w in desired.warnings] == ["messages[0].trigger.smart.backup_time"]
    assert desired.warnings[0].warning and "passed everywhere" in desired.warnings[0].message
    partly = build(with_message("", trigger='{smart: {backup_time: "2026-11-29 20:00:00"}}'))
    assert "some time zones" in partly.warnings[0].message


def test_single_trigger_zone_types() -> None:
    site = build(with_message("", trigger='{single: {time: "2027-01-10 09:00:00", zone: site}}'))
    device = build(
        with_message("", trigger='{single: {time: "2027-01-10 09:00:00", zone: device}}')
    )
    assert site.schedules["m1"].trigger["single"]["zone_type"] == api.ZONE_SITE
    assert device.schedules["m1"].trigger["single"]["zone_type"] == api.ZONE_DEVICE
    problem = one(with_message("", trigger='{single: {time: "2027-01-10 09:00:00"}}'))
    assert "missing key 'zone'" in problem.message


def periodical(
    unit: str, points: str = "", start: str = "2027-01-01", end: str = "2027-03-01", freq: int = 1
) -> str:
    extra = f", points: {points}" if points else ""
    return (
        f'{{periodical: {{start: "{start} 00:00:00", end: "{end} 00:00:00", time: "18:00:00", '
        f"unit: {unit}, frequency: {freq}, zone: device{extra}}}}}"
    )


def test_periodical_per_unit_rules() -> None:
    assert "not used with unit day" in one(with_message("", periodical("day", "[MON]"))).message
    assert "needs points" in one(with_message("", periodical("week"))).message
    assert "not a week point" in one(with_message("", periodical("week", "[FUNDAY]"))).message
    assert "not a month point" in one(with_message("", periodical("month", "[32]"))).message
    assert "frequency 101" in one(with_message("", periodical("day", freq=101))).message
    month = build(with_message("", periodical("month", "[15, 1, 1]")))
    assert month.schedules["m1"].trigger["periodical"]["point"] == ["01", "15"]
    week = build(with_message("", periodical("week", "[fri, MON]")))
    assert week.schedules["m1"].trigger["periodical"]["point"] == ["MON", "FRI"]


def test_periodical_span_and_order() -> None:
    assert "not after start" in one(with_message("", periodical("day", end="2026-12-31"))).message
    spans = one(with_message("", periodical("day", start="2026-12-01", end="2027-12-05")))
    assert "spans 369 days" in spans.message
    none = one(with_message("", periodical("month", "[31]", start="2027-02-01", end="2027-02-27")))
    assert "no occurrence" in none.message


def test_trigger_needs_exactly_one_kind() -> None:
    problem = one(
        with_message("", trigger='{smart: {backup_time: now}, single: {time: "x", zone: site}}')
    )
    assert "exactly one kind" in problem.message


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ("{tag: [" + ", ".join(f"t{i}" for i in range(21)) + "]}", "21 tag values"),
        ("{tag_and: [" + "x" * 41 + "]}", "41 bytes"),
        ("{alias: [" + ", ".join(f"a{i}" for i in range(1001)) + "]}", "1001 alias values"),
        (
            "{registration_id: [" + ", ".join(f"r{i}" for i in range(1001)) + "]}",
            "1001 registration_id",
        ),
        ("{tag: [US, US]}", "listed twice"),
        ("{tag: []}", "empty tag list"),
        ("{alias: [a], tag: [b]}", "cannot be combined"),
        ("{tag_not: [b]}", "tag_not alone"),
        ("everyone", "not an audience"),
        ("{}", "empty audience"),
        ("{segment: ' '}", "empty segment id"),
    ],
)
def test_audience_limits(audience: str, expected: str) -> None:
    problem = one(with_message(f"audience: {audience}"))
    assert expected in problem.message
    assert problem.path.startswith("messages[0].audience")


def test_audience_api_forms() -> None:
    forms = {
        "all": "all",
        "{tag: [US, IN]}": {"tag": ["US", "IN"]},
        "{tag_and: [a], tag_not: [b]}": {"tag_and": ["a"], "tag_not": ["b"]},
        "{segment: s1}": {"seg": {"id": "s1"}},
        "{registration_id: [r1]}": {"registration_id": ["r1"]},
    }
    for audience, expected in forms.items():
        body = build(with_message(f"audience: {audience}")).schedules["m1"].body
        assert body["push"]["to"] == expected


@pytest.mark.parametrize(
    ("code", "hint"),
    [("pt_BR", "did you mean 'pt-BR'?"), ("EN", "did you mean 'en'?"), ("xx", "ISO 639-1")],
)
def test_unknown_language_codes(code: str, hint: str) -> None:
    problem = one(BASE.replace("[en, fr]", f"[en, fr, {code}]"))
    assert f"unknown language code '{code}'" in problem.message and hint in problem.hint
    assert problem.path == "defaults.languages[2]"


def test_norway_problem_gets_a_quoting_hint() -> None:
    problem = one(BASE.replace("[en, fr]", "[en, no]"))
    assert "boolean false" in problem.message and "quote" in problem.hint


def test_default_language_must_be_listed() -> None:
    problem = one(
        BASE.replace("  languages: [en, fr]\n", "  languages: [en, fr]\n  default_language: de\n")
    )
    assert "'de' is not one of the languages" in problem.message


def test_series_expands_names_vars_and_strings() -> None:
    spec = BASE.replace(
        '    trigger: {smart: {backup_time: "2027-01-10 09:00:00"}}\n',
        '    trigger: {smart: {backup_time: "{date} 09:00:00"}}\n'
        '    extras: {day: "{n}"}\n'
        "    series:\n"
        '      - {n: 1, date: "2027-01-10", who: Ana}\n'
        '      - {n: 2, date: "2027-01-11", who: Bo}\n',
    ).replace("name: m1", "name: m_{n}")
    desired = build(spec)
    assert list(desired.schedules) == ["m_1", "m_2"]
    second = desired.schedules["m_2"]
    assert second.trigger == {"intelligent": {"backup_time": "2027-01-11 09:00:00"}}
    assert second.copy["en"]["alert"] == "Hello Bo"
    assert second.body["push"]["body"]["notification"]["alert"] == "Hello Bo"
    assert second.source == desired.schedules["m_1"].source


def test_series_placeholder_without_a_value() -> None:
    spec = BASE.replace("name: m1", "name: m_{n}") + "    series: [{x: 1}]\n"
    problem = one(spec)
    assert (
        "no n for the {n} placeholder" in problem.message
        and problem.path == "messages[0].series[0]"
    )


def test_reserved_custom_args_key() -> None:
    problem = one(with_message("custom_args: {managed_by: me}"))
    assert "'managed_by' is reserved" in problem.message
    problem = one(with_message("custom_args: {reconcile_state: forged}"))  # the owner marker
    assert "'reconcile_state' is reserved" in problem.message


def test_enabled_false_is_carried_in_the_body() -> None:
    assert build(with_message("enabled: false")).schedules["m1"].body["enabled"] is False


def test_message_overrides_defaults_and_merges_mappings() -> None:
    spec = BASE.replace("  vars: {who: you}\n", "  vars: {who: you}\n  extras: {a: 1, b: 2}\n")
    desired = build(spec.rstrip("\n") + "\n    extras: {b: 3}\n    languages: [fr]\n")
    schedule = desired.schedules["m1"]
    assert schedule.default_language == "fr" and list(schedule.copy) == ["fr"]
    assert schedule.body["push"]["body"]["notification"]["android"]["extras"] == {"a": 1, "b": 3}
    assert "multi_language" not in schedule.body["push"]["body"]["options"]


def test_platform_copy_of_other_languages_is_a_warning_and_not_in_copy() -> None:
    french = "title: Salut\nalert: Bonjour\nios:\n  subtitle: Sous-titre\n"
    desired = build(templates={"templates/t/fr.yaml": french})
    schedule = desired.schedules["m1"]
    assert schedule.copy["fr"] == {"title": "Salut", "alert": "Bonjour"}
    [warning] = desired.warnings
    assert (warning.file, warning.line, warning.path) == ("templates/t/fr.yaml", 4, "ios.subtitle")
    assert "not sent for fr" in warning.message
    english = "title: Hi\nalert: Hello\nios:\n  subtitle: Sub\nandroid:\n  title: Droid\n"
    body = build(templates={"templates/t/en.yaml": english}).schedules["m1"].body
    notification = body["push"]["body"]["notification"]
    assert notification["ios"]["alert"] == {"title": "Hi", "subtitle": "Sub", "body": "Hello"}
    assert notification["android"]["title"] == "Droid"
    assert notification["hmos"]["title"] == "Hi"


def test_one_broken_message_still_reports_all_its_problems() -> None:
    spec = BASE + (
        "  - name: bad-name\n"
        "    template: tt\n"
        "    languages: [en, pt_BR]\n"
        "    audience: {tags: [x]}\n"
        '    trigger: {smart: {backup_time: "2027-01-32 09:00:00"}}\n'
        "    time_to_live: -1\n"
    )
    found = problems(spec)
    assert [p.path for p in found] == [
        "messages[1].name",
        "messages[1].template",
        "messages[1].languages[1]",
        "messages[1].audience.tags",
        "messages[1].trigger.smart.backup_time",
        "messages[1].time_to_live",
    ]
    assert [p.line for p in found] == list(range(10, 16))


def test_periodical_start_beyond_the_horizon_and_passed_series() -> None:
    late = one(with_message("", periodical("day", start="2027-12-01", end="2028-01-01")))
    assert late.path == "messages[0].trigger.periodical.start" and "one year" in late.message
    ended = build(with_message("", periodical("day", start="2026-01-01", end="2026-02-01")))
    assert "passed everywhere" in ended.warnings[0].message
    assert ended.warnings[0].path == "messages[0].trigger.periodical.end"
    running = build(with_message("", periodical("day", start="2026-11-01", end="2027-02-01")))
    assert not running.warnings


def test_scalar_series_values_are_named_item_and_backup_time_now() -> None:
    spec = BASE.replace("name: m1", "name: m_{item}") + "    series: [a, b, c]\n"
    spec = spec.replace('"2027-01-10 09:00:00"', "now")
    desired = build(spec)
    assert list(desired.schedules) == ["m_a", "m_b", "m_c"]
    assert desired.schedules["m_b"].trigger == {"intelligent": {"backup_time": "now"}}
    assert not desired.warnings


def test_platform_forms() -> None:
    single = build(with_message("platform: ios")).schedules["m1"].body["push"]["body"]
    assert single["platform"] == ["ios"] and set(single["notification"]) == {"alert", "ios"}
    ordered = build(with_message("platform: [hmos, android]")).schedules["m1"].body["push"]["body"]
    assert ordered["platform"] == ["android", "hmos"]
    assert one(with_message("platform: iOS")).path == "messages[0].platform"
    assert one(with_message("platform: []")).message == "empty platform list"
