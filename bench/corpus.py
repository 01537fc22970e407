"""Generate a large, valid campaign repository for benchmarks (specs + templates on disk).

`generate(root)` writes 100 plans x 100 schedules x 5 languages by default, every send time inside
the one-year horizon of CORPUS_NOW. Raise the schedule quota (CORPUS_SCHEDULE_QUOTA) to load it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

CORPUS_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CORPUS_LANGUAGES = ("en", "fr", "es", "de", "pt-BR", "it", "ja", "ko", "hi", "tl")
CORPUS_TEMPLATES = 10  # distinct templates shared by every plan
CORPUS_SCHEDULE_QUOTA = 1_000_000  # pass as --schedule-quota / Settings(schedule_quota=...)


def generate(root: Path, plans: int = 100, per_plan: int = 100, languages: int = 5) -> None:
    """Write specs/ and templates/ under `root` (created if missing)."""
    if not 1 <= languages <= len(CORPUS_LANGUAGES):
        raise ValueError(f"languages must be 1..{len(CORPUS_LANGUAGES)}")
    langs = CORPUS_LANGUAGES[:languages]
    (root / "specs").mkdir(parents=True, exist_ok=True)
    for t in range(CORPUS_TEMPLATES):
        folder = root / "templates" / f"bench_{t}"
        folder.mkdir(parents=True, exist_ok=True)
        for lang in langs:
            (folder / f"{lang}.yaml").write_text(_template(t, lang), encoding="utf-8")
    for p in range(plans):
        (root / "specs" / f"bench_plan_{p:03d}.yaml").write_text(
            _spec(p, per_plan, langs), encoding="utf-8"
        )


def _template(t: int, lang: str) -> str:
    """Even templates are plain `{{ name }}` copy; odd ones use filters and conditions (Jinja)."""
    if t % 2 == 0:
        alert = f"[{lang}] -{{{{ discount }}}}% on {{{{ product }}}} until {{{{ until }}}}!"
        title = f"[{lang}] {{{{ product }}}} offer {t}"
    else:
        alert = (
            f"[{lang}] {{% if discount >= 50 %}}Huge deal: {{% endif %}}"
            f"-{{{{ discount }}}}% on {{{{ product | upper }}}} until {{{{ until }}}}!"
        )
        title = f"[{lang}] {{{{ product | title }}}} offer {t}"
    text = f'title: "{title}"\nalert: "{alert}"\n'
    if lang == "en":  # platform copy reaches the default language only (multi_language)
        text += 'ios:\n  subtitle: "[en] day {{ day }}"\n'
    return text


def _spec(p: int, per_plan: int, langs: tuple[str, ...]) -> str:
    lines = [
        f"plan:\n  id: bench_plan_{p:03d}\n  description: Benchmark plan {p}\n",
        "defaults:\n",
        "  platform: [android, ios]\n",
        f"  audience: {{tag: [region_{p % 7}, cohort_{p % 13}]}}\n",
        f"  languages: [{', '.join(langs)}]\n",
        "  default_language: en\n" if "en" in langs else "",
        "  time_to_live: 86400\n",
        f"  extras: {{campaign: bench_{p:03d}}}\n",
        "  android: {channel_id: promos, priority: 1}\n",
        "  ios: {sound: default, thread_id: bench}\n",
        "messages:\n",
    ]
    start = CORPUS_NOW + timedelta(days=7)
    for m in range(per_plan):
        when = (start + timedelta(days=(p + m) % 300, hours=m % 12)).strftime("%Y-%m-%d %H:00:00")
        lines.append(
            f"  - name: bench_{p:03d}_msg_{m:03d}\n"
            f"    template: bench_{(p + m) % CORPUS_TEMPLATES}\n"
            f'    vars: {{product: "Product {m}", discount: {10 + m % 60}, '
            f'until: "{when[:10]}", day: {m % 5 + 1}}}\n'
            f'    trigger: {{smart: {{backup_time: "{when}"}}}}\n'
            f"    custom_args: {{n: {m}}}\n"
        )
    return "".join(lines)


if __name__ == "__main__":
    import sys

    generate(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/corpus"))
