"""`reconcile validate` and `reconcile render` through the CLI entry point: exit codes, output."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from reconciler.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
TODAY = "2026-11-29T12:00:00+00:00"
LOCATED = re.compile(r"^[\w/.\-]+\.yaml:\d+:\d+: ")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def project(tmp_path: Path, spec: str, templates: dict[str, str] | None = None) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.yaml").write_text(spec, encoding="utf-8")
    for rel, text in (templates or {"t/en.yaml": "title: Hi\nalert: Hello\n"}).items():
        path = tmp_path / "templates" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """\
plan: {id: p1}
defaults: {template: t, audience: all, languages: [en]}
messages:
  - name: m1
    trigger: {smart: {backup_time: "2027-01-10 09:00:00"}}
"""


def test_validate_the_bundled_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "--root", str(ROOT), "--now", TODAY)
    assert code == 0, err
    assert out.startswith("valid: 2 plan(s) of 100, 14 schedule(s)")
    warnings = err.splitlines()
    assert warnings and all(LOCATED.match(w) and ": warning: " in w for w in warnings)


def test_validate_reports_every_problem_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = GOOD.replace("languages: [en]", "languages: [en], langs: [fr]").replace(
        "2027-01-10 09:00:00", "2027-13-10 09:00:00"
    )
    code, out, err = run(capsys, "validate", "--root", str(project(tmp_path, spec)), "--now", TODAY)
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert lines[-1] == "2 errors in specs; nothing was planned or sent."
    assert lines[0] == (
        "specs/a.yaml:2:57: defaults.langs: unknown key 'langs'; did you mean 'languages'?"
    )
    assert all(LOCATED.match(line) for line in lines[:-1])


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"plan: [\n",
        b"- 1\n- 2\n",
        b"a: &x 1\nb: *x\n",
        b"plan: {id: 5}",
    ],
)
def test_bad_input_is_a_located_error_never_a_traceback(
    garbage: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, "")
    (root / "specs" / "a.yaml").write_bytes(garbage)
    code, _, err = run(capsys, "validate", "--root", str(root), "--now", TODAY)
    assert code == 1
    assert "Traceback" not in err and "internal error" not in err
    assert err.startswith("specs/a.yaml:")


def test_hostile_template_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = {"t/en.yaml": "alert: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n"}
    code, _, err = run(
        capsys, "validate", "--root", str(project(tmp_path, GOOD, hostile)), "--now", TODAY
    )
    assert code == 1
    assert err.startswith(
        "templates/t/en.yaml:1:8: alert: a function or method call is not allowed"
    )


def test_schedule_quota_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = GOOD + '  - name: m2\n    trigger: {smart: {backup_time: "2027-01-11 09:00:00"}}\n'
    root = str(project(tmp_path, spec))
    assert run(capsys, "validate", "--root", root, "--now", TODAY)[0] == 0
    code, _, err = run(capsys, "validate", "--root", root, "--now", TODAY, "--schedule-quota", "1")
    assert code == 1 and "more live schedules than the quota of 1" in err


def test_render_json_is_parseable_and_filtered(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "render",
        "social_reengage_*",
        "--lang",
        "hi",
        "--format",
        "json",
        "--root",
        str(ROOT),
        "--now",
        TODAY,
    )
    document = json.loads(out)
    assert code == 0 and document["format_version"] == 1
    names = [s["body"]["name"] for s in document["schedules"]]
    assert len(names) == 6 and all(n.startswith("social_reengage_") for n in names)
    assert all(list(s["copy"]) == ["hi"] for s in document["schedules"])
    assert [p["body"]["plan_id"] for p in document["plans"]] == ["social_reengagement_2027"]


def test_render_text_shows_trigger_audience_and_every_language(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys, "render", "social_weekly_digest", "--root", str(ROOT), "--now", TODAY
    )
    assert code == 0
    assert "every week on FRI at 18:00:00 device time" in out
    assert "any of tags [US, IN, PH]" in out
    for lang in ("[en] (default)", "[es]", "[hi]", "[tl]", "[pt-BR]"):
        assert lang in out
    assert '"time_unit": "week"' in out


def test_render_unknown_name_or_language(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "render", "promo_year_end_remnder_01", "--root", str(ROOT), "--now", TODAY
    )
    assert code == 1 and "did you mean promo_year_end_reminder_01" in err
    code, _, err = run(capsys, "render", "--lang", "de", "--root", str(ROOT), "--now", TODAY)
    assert code == 1 and "--lang de" in err


def test_render_of_an_invalid_project_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(project(tmp_path, GOOD.replace("[en]", "[en, fr]")))
    code, out, err = run(capsys, "render", "--root", root, "--now", TODAY)
    assert code == 1 and out == "" and "has no 'fr' copy" in err


def make_node(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
    else:
        os.mkfifo(path)


@pytest.mark.timeout(20)  # opening a FIFO would block: fail, never hang
@pytest.mark.parametrize(
    ("kind", "words"), [("directory", "a directory"), ("fifo", "a named pipe (FIFO)")]
)
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_spec_path_that_is_not_a_regular_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, words: str, command: str
) -> None:
    root = project(tmp_path, GOOD)
    make_node(root / "specs" / "x.yaml", kind)
    code, out, err = run(capsys, command, "--root", str(root), "--now", TODAY)
    assert code == 1, out
    first = err.splitlines()[0].removeprefix("error: ")  # plan says "error: " first
    assert first == f"specs/x.yaml:1:1: is {words}, not a spec file; rename or remove it"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_template_path_that_is_not_a_regular_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    root = project(tmp_path, GOOD)
    make_node(root / "templates" / "t" / "fr.yaml", kind)
    code, _, err = run(capsys, "validate", "--root", str(root), "--now", TODAY)
    assert code == 1
    assert err.startswith("templates/t/fr.yaml:1:1: is a ")
    assert "not a template file; rename or remove it" in err.splitlines()[0]


def test_an_expression_that_yields_a_function_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    method = {"t/en.yaml": "title: Hi\nalert: |\n  Hello\n  {{ ''.join }}\n"}
    root = project(tmp_path, GOOD, method)
    code, out, err = run(capsys, "validate", "--root", str(root), "--now", TODAY)
    assert code == 1 and out == ""
    assert err.startswith(
        "templates/t/en.yaml:4:1: alert: this expression yields a function or method, not text"
    )
    assert "0x" not in err  # no memory address, in the copy or in the message


def test_range_is_no_builtin_and_a_list_value_is_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, GOOD, {"t/en.yaml": "title: Hi\nalert: 'n {{ range }}'\n"})
    code, _, err = run(capsys, "validate", "--root", str(root), "--now", TODAY)
    assert code == 1
    assert err.startswith("templates/t/en.yaml:2:8: alert: undefined variable 'range'")
    (root / "specs" / "a.yaml").write_text(GOOD + "    vars: {range: [1, 2]}\n", "utf-8")
    code, _, err = run(capsys, "validate", "--root", str(root), "--now", TODAY)
    assert code == 1
    assert err.startswith("templates/t/en.yaml:2:8: alert: this expression yields a list, not text")
    assert "join(" in err.splitlines()[0]  # the fix names a filter that makes text of it
