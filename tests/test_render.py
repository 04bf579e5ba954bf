"""What reviewers see: the PR comment, the check run text, the HTML report and the JSON."""

from __future__ import annotations

import re
from importlib import resources

import jinja2
import pytest

from evaluators.rendering.render import (
    CHECK_SUMMARY_LIMIT,
    GITHUB_COMMENT_LIMIT,
    REPORT_MARKER_PREFIX,
    render_check_summary,
    render_check_title,
    render_html,
    render_json,
    render_pr_comment,
    report_marker,
)
from evaluators.report import Decision, EvaluationReport, RunStatus, Verdict
from report_templates import environment
from tests.report_factory import make_report, segment

HOSTILE_VALUES = [
    "<script>alert(1)</script>",
    "a|b",
    "@acme/admins",
    "[click](javascript:alert(1))",
    "**bold** `code` $x$ ~strike~",
    "line\nbreak",
    "<img src=x onerror=alert(1)>",
]


@pytest.fixture(scope="module")
def small() -> EvaluationReport:
    return make_report()


@pytest.fixture(scope="module")
def huge() -> EvaluationReport:
    return make_report(n_segments=5_000, regressed=40)


def table_rows(markdown: str, header_start: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def cells(row: str) -> int:
    """Table cells as GitHub splits them: on pipes not escaped with a backslash."""
    return len(re.split(r"(?<!\\)\|", row)) - 2


def test_the_comment_starts_with_the_marker_and_the_headline(small: EvaluationReport) -> None:
    comment = render_pr_comment(small)
    first, second = comment.splitlines()[:2]
    assert first == "<!-- shipyard:report model=churn -->"
    assert first.startswith(REPORT_MARKER_PREFIX)
    assert second == (
        "**churn** scores ROC AUC 0.861 (+0.024, 95% CI +0.019 to +0.029) overall; "
        "8 segments improved, 1 regressed, 4 unchanged, 4 too small to judge."
    )


def test_the_comment_has_every_section(small: EvaluationReport) -> None:
    comment = render_pr_comment(small, html_url="https://ci.example/report.html", audit=["x"])
    for expected in [
        "### 👀 Needs review",
        "- Segment region=value-0 regressed: ROC AUC -0.041 (95% CI -0.060 to -0.022).",
        "#### Overall",
        "#### Segments",
        "#### Calibration",
        "| ECE, equal-width bins (10) | 0.035 | 0.031 | +0.004 |",
        "```mermaid\n%%{init:",
        "\nxychart-beta\n",
        "Legend: **blue** candidate · **red** production · **grey** perfect calibration",
        "#### Latency",
        "| Single request p99 (ms) | 12.5 | 12.0 | 1.04× |",
        "#### Claimed vs reproduced",
        "#### Leakage",
        "#### Statistics",
        "Fingerprint <code>0123456789abcdef</code>",
        "<summary>Audit trail</summary>",
        "[Full HTML report](https://ci.example/report.html)",
    ]:
        assert expected in comment


def test_no_segment_is_listed_twice_in_the_comment(small: EvaluationReport) -> None:
    comment = render_pr_comment(small)
    assert "more segments, every metric" not in comment  # all 17 fit the main table
    for seg in small.segments:
        assert comment.count(f"= {seg.value} |") == 1, seg.value


def test_segments_beyond_the_main_table_are_collapsed_below_it(huge: EvaluationReport) -> None:
    comment = render_pr_comment(huge)
    main = {r.split("|")[1].strip() for r in table_rows(comment, "| Segment |")}
    collapsed = comment.split("more segments, every metric", 1)[1]
    assert not [name for name in main if f"| {name.split(' = ')[1]} |" in collapsed]


def test_segments_are_listed_regressions_first_then_improvements_then_the_rest(
    small: EvaluationReport,
) -> None:
    rows = table_rows(render_pr_comment(small), "| Segment |")
    outcomes = [
        next(o for o in ("regressed", "improved", "unchanged", "too small") if o in r) for r in rows
    ]
    order = {"regressed": 0, "improved": 1, "unchanged": 2, "too small": 3}
    assert [order[o] for o in outcomes] == sorted(order[o] for o in outcomes)
    assert len(rows) == 17


def test_five_thousand_segments_still_fit_in_one_comment(huge: EvaluationReport) -> None:
    comment = render_pr_comment(huge, html_url="https://ci.example/report.html")
    assert len(comment) < GITHUB_COMMENT_LIMIT
    rows = table_rows(comment, "| Segment |")
    assert sum("regressed" in row for row in rows) == min(len(rows), 40)
    assert (
        "4,975 more segments in the full report ([HTML report](https://ci.example/report.html))"
        in (comment)
    )
    assert comment.startswith(report_marker("churn"))


def test_five_thousand_segments_still_fit_in_the_check_summary_and_title(
    huge: EvaluationReport,
) -> None:
    assert len(render_check_summary(huge)) <= CHECK_SUMMARY_LIMIT
    title = render_check_title(huge)
    assert len(title) < 100
    assert title == "Needs review: ROC AUC +0.024 (95% CI +0.019 to +0.029); 40 segments regressed"


def test_absurd_free_text_is_cut_to_the_limit() -> None:
    report = make_report().model_copy(
        update={"verdict": Verdict(decision=Decision.FAIL, reasons=["x" * 5_000] * 200)}
    )
    comment = render_pr_comment(report, audit=["y" * 10_000] * 1_000)
    assert len(comment) < GITHUB_COMMENT_LIMIT
    assert "… and 175 more reasons." in comment


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_segment_values_from_data_cannot_break_tables_or_inject_html(value: str) -> None:
    # One hostile segment leads the main table; another, past its 25 rows, is in the collapsed one.
    fillers = [segment("plan", f"p{i}", delta=-0.10, half_width=0.01) for i in range(25)]
    hostile = [
        segment(value, value, delta=-0.20, half_width=0.01),
        segment(value, value, delta=-0.05, half_width=0.01),
    ]
    report = make_report(n_segments=0).model_copy(update={"segments": [*hostile, *fillers]})
    comment = render_pr_comment(report)
    for header in ("| Segment |", "| Value |"):
        header_line = next(line for line in comment.splitlines() if line.startswith(header))
        rows = table_rows(comment, header)
        assert rows and all(cells(row) == cells(header_line) for row in rows)
    assert "<script" not in comment
    assert "<img" not in comment
    assert "@acme" not in comment  # no mention is made
    assert not re.search(r"(?<!\\)\[click(?<!\\)\]", comment)  # no link is made
    html = render_html(report)
    assert "<script" not in html
    assert "<img src=x" not in html


def test_a_hostile_model_name_cannot_close_the_marker_comment() -> None:
    comment = render_pr_comment(make_report(model="x --> <b>hi</b>"))
    assert comment.splitlines()[0] == "<!-- shipyard:report model=x_--___b_hi_/b_ -->"
    assert "<b>" not in comment


def test_only_http_links_are_rendered_and_they_cannot_break_out(small: EvaluationReport) -> None:
    assert "javascript" not in render_pr_comment(small, html_url="javascript:alert(1)")
    comment = render_pr_comment(small, html_url="https://ci.example/a report).html")
    assert "(https://ci.example/a%20report%29.html)" in comment


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        pytest.param(RunStatus.TIMED_OUT, "limit of 600 s reached", "timed out", id="timed out"),
        pytest.param(RunStatus.ERROR, "bad <graph> | node 3", "failed", id="error"),
    ],
)
def test_an_unfinished_run_gets_a_short_clear_message(
    status: RunStatus, error: str, expected: str
) -> None:
    report = make_report(status=status, error=error)
    comment = render_pr_comment(report)
    assert comment.startswith(report_marker("churn"))
    assert expected in comment
    assert "/retest" in comment
    assert "####" not in comment
    assert len(comment) < 1_000
    assert "<graph>" not in comment
    assert expected in render_check_summary(report) or "stopped" in render_check_summary(report)
    assert render_check_title(report).startswith("Evaluation")
    html = render_html(report)
    assert "<img" not in html
    assert "Nothing was judged" in html


def test_the_html_report_is_self_contained(small: EvaluationReport) -> None:
    html = render_html(small)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, flags=re.IGNORECASE)
    assert "<link" not in html
    assert "<script" not in html
    assert html.count('<img alt="') == 3
    assert 'src="data:image/svg+xml;base64,' in html
    assert "ROC AUC" in html
    assert "0.861" in html


def test_html_plots_survive_dollar_signs_in_segment_values() -> None:
    report = make_report(n_segments=0).model_copy(
        update={
            "segments": [segment("price", "$5-$10", delta=-0.05), segment("p", "$", delta=0.04)]
        }
    )
    assert "$5-$10" in render_html(report)


def test_json_round_trips(small: EvaluationReport) -> None:
    assert EvaluationReport.model_validate_json(render_json(small)) == small


def test_templates_are_found_through_importlib_resources() -> None:
    package = resources.files("report_templates")
    for name in ("pr_comment.md.j2", "check_summary.md.j2", "report.html.j2", "_macros.md.j2"):
        assert package.joinpath(name).is_file()
        assert environment().get_template(name) is not None
    with pytest.raises(jinja2.TemplateNotFound):
        environment().get_template("../evaluators/render.py")
    assert (
        environment()
        .get_template("report.html.j2")
        .render(
            report=make_report(status=RunStatus.ERROR, error="<b>"),
            completed=False,
            headline="h",
            ci="95% CI",
            decision=None,
            decision_titles={},
            outcome_labels={},
            details=[],
            plots={},
        )
        .count("&lt;b&gt;")
        == 1
    )


def test_the_same_report_renders_the_same_comment_so_edits_happen_only_on_change(
    huge: EvaluationReport,
) -> None:
    assert render_pr_comment(huge) == render_pr_comment(huge.model_copy(deep=True))


@pytest.mark.parametrize("max_chars", [30_000, 12_000, 4_000])
def test_a_smaller_budget_is_respected_for_several_models_in_one_comment(
    huge: EvaluationReport, max_chars: int
) -> None:
    comment = render_pr_comment(huge, max_chars=max_chars)
    assert len(comment) <= max_chars
    assert comment.startswith(report_marker("churn"))
