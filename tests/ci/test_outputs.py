"""CI outputs: GitHub's summary, outputs (heredoc delimiters), masks and warnings; GitLab's dotenv and metrics."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest

from mlops_bot.ci.outputs import CIOutput, github_output, openmetrics
from mlops_bot.errors import DataError, UsageError
from tests.helpers.ci_env import parse_github_outputs


def test_outputs_use_a_fresh_random_heredoc_delimiter_for_multi_line_values(tmp_path: Path) -> None:
    target = tmp_path / "out"
    out = CIOutput("github", {"GITHUB_OUTPUT": str(target)})
    hostile = "line 1\nEOF\nverdict=pass\nghadelimiter_\n"
    out.outputs({"verdict": "fail", "report": hostile})
    out.outputs({"report": "second\nvalue"})
    text = target.read_text()
    delimiters = re.findall(r"^report<<(ghadelimiter_[0-9a-f]{32})$", text, re.M)
    assert len(delimiters) == 2 and delimiters[0] != delimiters[1]
    assert text.startswith("verdict=fail\n")
    first = parse_github_outputs(text.split("report<<" + delimiters[1])[0])
    assert first == {"verdict": "fail", "report": hostile}  # the value could not forge "verdict=pass"


def test_a_value_containing_its_delimiter_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlops_bot.ci.outputs.secrets.token_hex", lambda n: "0" * 32)
    with pytest.raises(DataError, match="contains its heredoc delimiter"):
        github_output("report", "a\nghadelimiter_" + "0" * 32 + "\nb")
    with pytest.raises(UsageError, match="not a valid GitHub output name"):
        github_output("bad\nname", "x")


def test_summary_is_appended_and_missing_variables_mean_no_file(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    assert CIOutput("github", {"GITHUB_STEP_SUMMARY": str(summary)}).summary("## report") == summary
    assert summary.read_text() == "# earlier step\n## report\n"
    assert CIOutput("github", {}).summary("x") is None and CIOutput("local", {}).outputs({"a": "b"}) is None
    with pytest.raises(DataError, match="cannot append to GITHUB_STEP_SUMMARY file"):
        CIOutput("github", {"GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "such")}).summary("x")


def test_masks_and_warnings_on_github_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    out = CIOutput("github", {}, stream=stream)
    out.mask("s3cret\nline-two\n")
    assert out.warning("comment denied: 100% sure\nsecond line", key="denied") is True
    assert out.warning("comment denied again", key="denied") is False
    assert stream.getvalue().splitlines() == ["::add-mask::s3cret", "::add-mask::line-two",
                                              "::warning::comment denied: 100%25 sure%0Asecond line"]
    assert capsys.readouterr().err.count("mlops-bot: warning:") == 1
    quiet = io.StringIO()
    CIOutput("gitlab", {}, stream=quiet, root=tmp_path).mask("s3cret")
    assert quiet.getvalue() == ""


def test_a_warning_shows_urls_without_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    CIOutput("github", {}, stream=stream).warning("POST https://hook:CANARY@hooks.example/x?sig=CANARY failed")
    assert stream.getvalue() == "::warning::POST https://hooks.example/x failed\n"
    assert "CANARY" not in capsys.readouterr().err


def test_gitlab_dotenv_report_merges_single_line_values(tmp_path: Path) -> None:
    out = CIOutput("gitlab", {}, root=tmp_path)
    path = out.outputs({"verdict": "pass", "report-file": ".mlops-bot/report.md", "report": "multi\nline"})
    out.outputs({"comment-url": "https://gitlab.example/g/p/-/merge_requests/7#note_5", "verdict": "fail"})
    assert path == tmp_path / "mlops-bot.env"
    assert path.read_text() == ("MLOPS_BOT_VERDICT=fail\nMLOPS_BOT_REPORT_FILE=.mlops-bot/report.md\n"
                                "MLOPS_BOT_COMMENT_URL=https://gitlab.example/g/p/-/merge_requests/7#note_5\n")


def test_gitlab_metrics_report_is_openmetrics_text(tmp_path: Path) -> None:
    path = CIOutput("gitlab", {"MLOPS_BOT_METRICS_REPORT": "out/metrics.txt"}, root=tmp_path).metrics(
        {"accuracy": 0.95, "latency ms": 12.0, "loss": math.nan, "gain": math.inf}, prefix="iris-classifier_")
    assert path == tmp_path / "out" / "metrics.txt"
    assert path.read_text() == ("iris_classifier_accuracy 0.95\niris_classifier_latency_ms 12.0\n"
                                "iris_classifier_loss NaN\niris_classifier_gain +Inf\n# EOF\n")
    assert openmetrics({"1st": 1.0}) == "_1st 1.0\n# EOF\n"
    assert CIOutput("github", {}).metrics({"a": 1.0}) is None
