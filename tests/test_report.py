"""The report and the end-of-run summary, rendered from fixture outputs and read back with an HTML parser;
the timing wrapper ``make run`` uses; the CPU-thread policy in ``audiolab.core.runtime``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from audiolab.core import cli, runtime
from audiolab.report import html as report
from audiolab.report import summary

REPO = Path(__file__).resolve().parent.parent


class Page(HTMLParser):
    """Flatten the page into ``events``: (tag, attrs, text) for headings, links, images, banners,
    details and table cells, in document order."""

    def __init__(self, text: str):
        super().__init__()
        self.events: list[tuple[str, dict, str]] = []
        self.ids: set[str] = set()
        self._open: list[tuple[str, dict, list[str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in ("img", "audio"):
            self.events.append((tag, attrs, ""))
        elif tag in ("h1", "h2", "h3", "h4", "a", "td", "th", "summary", "div", "details", "table", "tr"):
            self._open.append((tag, attrs, []))
            if tag in ("details", "table", "tr"):
                self.events.append((tag, attrs, ""))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                t, attrs, text = self._open.pop(i)
                if tag not in ("details", "table", "tr"):
                    self.events.append((t, attrs, "".join(text).strip()))
                if tag == "details":
                    self.events.append(("/details", {}, ""))
                break

    def handle_data(self, data):
        for _, _, text in self._open:
            text.append(data)

    def texts(self, tag: str) -> list[str]:
        return [text for t, _, text in self.events if t == tag]


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def metrics(source: str, dataset: str, **values) -> dict:
    return {**values, "dataset": dataset, "data_source": source, "config": {"seed": 0, "epochs": 3},
            "seed": 0, "git_commit": "abc123", "device": "cpu", "torch_version": "2.x"}


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    write(root / "q1_generate/metrics.json", metrics("synthetic", "q1_sinusoids", n_train=90, n_test=10))
    write(root / "q1_plot/metrics.json", metrics("synthetic", "q1_sinusoids", peaks_match_info=True))
    for name in ("example_001_source1.png", "example_001_all.png"):
        (root / "q1_plot" / name).write_bytes(b"png")
    write(root / "q1_train_lstm/metrics.json",
          metrics("synthetic", "q1_sinusoids", test_si_snr_db=41.5, train_seconds=20.0))
    write(root / "q1_train_lstm/anchors.json", [{"metric": "test_si_snr_db", "anchor": 35.0, "source": "target"}])
    (root / "q1_train_lstm/spectrograms").mkdir()
    (root / "q1_train_lstm/spectrograms/001.png").write_bytes(b"png")
    (root / "q1_train_lstm/curves.png").write_bytes(b"png")
    (root / "q1_train_lstm/audio").mkdir()
    (root / "q1_train_lstm/audio/001_source1_estimate.wav").write_bytes(b"wav")
    write(root / "q2_ctc/metrics.json", metrics("synthetic", "q2_tone_sequences", test_cer=0.01))
    write(root / "q2_compare/metrics.json",
          metrics("synthetic", "exam_random_log_probs", loss_ours=5.97, loss_torch=5.97))
    write(root / "q2_multitask/metrics.json",
          metrics("synthetic", "synthetic_emotional_speech", test_cer=0.3, test_emotion_accuracy=0.7))
    write(root / "q2_multitask/anchors.json",
          [{"metric": "test_emotion_accuracy", "anchor": 0.5, "source": "EMOVO target"}, "not a dict", 3])
    (root / "q2_multitask/confusion_matrix.png").write_bytes(b"png")
    (root / "q2_multitask/training_curves.png").write_bytes(b"png")
    write(root / "hw_cnn1d/metrics.json", metrics("real", "tsp", test_snr_improvement_db=7.3))
    write(root / "vae_bss/metrics.json", metrics("synthetic", "mix", images_test_psnr_db=23.0))
    write(root / "my_extra/metrics.json", metrics("real", "whatever", score=1.0))
    write(root / summary.TIMES / "q1_train_lstm.json",
          {"name": "q1_train_lstm", "wall_s": 65.0, "cpu_s": 60.0, "returncode": 0, "started_unix": 100.0})
    write(root / summary.TIMES / "q1_generate.json",
          {"name": "q1_generate", "wall_s": 5.0, "cpu_s": 4.0, "returncode": 0, "started_unix": 90.0})
    write(root / summary.TIMES / "hw_cnn2d.json",
          {"name": "hw_cnn2d", "wall_s": 3.0, "cpu_s": 2.0, "returncode": 2, "started_unix": 95.0})
    return root


def render(root: Path) -> Page:
    path = report.build_report(root)
    return Page(path.read_text(encoding="utf-8"))


def summary_cells(page: Page) -> list[list[str]]:
    """The rows of the first table (the summary) as lists of cell texts."""
    rows, in_table, current = [], False, None
    for tag, attrs, text in page.events:
        if tag == "table":
            if in_table:
                break
            in_table = True
        elif in_table and tag == "tr":
            current = []
            rows.append(current)
        elif in_table and tag in ("td", "th") and current is not None:
            current.append(text)
    return rows


def test_summary_table_opens_the_report_and_links_each_row_to_its_section(outputs):
    page = render(outputs)
    headings = page.texts("h2")
    assert headings[0] == "Summary"
    rows = summary_cells(page)
    assert rows[0] == ["question", "script", "data", "headline (ours)", "anchor / target", "wall time"]
    body = rows[1:]
    assert [r[1] for r in body] == [" ".join((r.script, *r.args)) for r in summary.RUNS]
    by_script = {r[1]: r for r in body}
    assert by_script["q1_train_lstm.py"][2] == "task data"           # the task's own sinusoids
    assert "41.5" in by_script["q1_train_lstm.py"][3] and by_script["q1_train_lstm.py"][4].startswith("35 ")
    assert by_script["q1_train_lstm.py"][5] == "1 min 05 s"
    assert by_script["q2_compare.py"][2] == "task data"              # the exam's random tensors
    assert by_script["q2_multitask.py"][2] == "synthetic"
    assert by_script["hw_cnn1d.py"][2] == "real"
    assert by_script["hw_cnn2d.py"][3] == "failed (exit 2)"
    assert by_script["speechcommands_rnn.py"][3] == "not run"
    links = [(a["href"], text) for tag, a, text in page.events if tag == "a" and a.get("href", "").startswith("#")]
    summary_links = [href for href, text in links if text.endswith(".py") or ".py " in text]
    assert len(summary_links) == len(summary.RUNS)
    assert all(href[1:] in page.ids for href, _ in links), "every in-page link has a target"
    assert dict((t, h) for h, t in links)["q1_plot.py"] == "#q1"


def test_sections_follow_the_questions_and_answer_parts_in_order(outputs):
    page = render(outputs)
    assert page.texts("h2") == ["Summary"] + [s.title for s in report.SECTIONS] + ["Other outputs"]
    h3 = page.texts("h3")
    q1 = [p.label for p in report.SECTIONS[0].parts]
    assert h3[:len(q1)] == q1
    # the key figure of (i) is the three-panel spectrogram, shown right after its heading and before the
    # remaining figures; the (iii) part shows the reconstruction spectrograms
    seq = [(t, a.get("src", ""), text) for t, a, text in page.events if t in ("h3", "h4", "img")]
    i_part = next(i for i, e in enumerate(seq) if e[2].startswith("(i) "))
    assert seq[i_part + 1][1] == "q1_plot/example_001_all.png"
    iii_part = next(i for i, e in enumerate(seq) if e[2].startswith("(iii)"))
    assert seq[iii_part + 1][1] == "q1_train_lstm/spectrograms/001.png"
    more = next(i for i, e in enumerate(seq) if e[0] == "h4" and "q1_plot" in e[2])
    assert more > iii_part and seq[more + 1][1] == "q1_plot/example_001_source1.png"
    assert sum(1 for t, a, _ in page.events if t == "img" and a["src"] == "q1_plot/example_001_all.png") == 1
    assert any(t == "audio" and a["src"] == "q1_train_lstm/audio/001_source1_estimate.wav" for t, a, _ in page.events)


def test_provenance_and_config_are_folded_into_one_details_per_section(outputs):
    page = render(outputs)
    events = page.events
    n_details = sum(1 for t, _, _ in events if t == "details")
    assert n_details == len(report.SECTIONS)  # keywords not run (no details); + the extra folder
    inside, outside = [], []
    depth = 0
    for tag, _, text in events:
        depth += tag == "details"
        depth -= tag == "/details"
        (inside if depth else outside).append(text)
    assert "abc123" in inside and "abc123" not in outside          # git commit only inside
    assert "torch_version" in inside and "torch_version" not in outside


def banners(page: Page) -> list[str]:
    """The section title above each synthetic banner."""
    ids, current = [], None
    for tag, attrs, text in page.events:
        if tag == "h2":
            current = text
        if tag == "div" and "synthetic" in attrs.get("class", ""):
            ids.append(current)
    return ids


def test_synthetic_banner_only_where_data_stands_in_for_a_real_corpus(outputs):
    page = render(outputs)
    titles = {s.id: s.title for s in report.SECTIONS}
    found = banners(page)
    assert titles["q2multitask"] in found and titles["vae"] in found
    assert titles["q1"] not in found                      # Q1's sinusoids are the task's data
    assert found.count(titles["q2ctc"]) == 1               # the CTC demo, not the exam's tensors
    assert titles["denoise"] not in found                 # real data


@pytest.mark.parametrize("content, kind", [
    (b"\xff\xfe{\x00}", "not UTF-8"),
    (b'[1, 2, 3]', "JSON list"),
    (b'{"test_cer": 0.1,', "not valid JSON"),
])
def test_broken_metrics_show_the_folder_as_broken_and_the_report_goes_on(outputs, content, kind):
    (outputs / "q2_ctc/metrics.json").write_bytes(content)
    page = render(outputs)
    row = next(r for r in summary_cells(page) if r[1] == "q2_ctc.py")
    assert row[3].startswith("broken: ") and kind in row[3]
    html_text = (outputs / "report.html").read_text(encoding="utf-8")
    assert "q2_ctc is broken: metrics.json" in html_text and kind in html_text
    assert "q2_compare.py" in html_text and page.texts("h2")[-1] == "Other outputs"  # the rest is there


def test_anchors_json_of_the_wrong_shape_is_reported_not_fatal(outputs):
    write(outputs / "q1_train_lstm/anchors.json", {"metric": "test_si_snr_db"})
    page = render(outputs)
    row = next(r for r in summary_cells(page) if r[1] == "q1_train_lstm.py")
    assert "anchors.json holds a JSON dict" in row[3]
    # entries of the wrong shape inside a list are dropped, the good one is kept
    row = next(r for r in summary_cells(page) if r[1] == "q2_multitask.py")
    assert "0.5 (EMOVO target)" in row[4]


def test_read_json_checked_reasons(tmp_path):
    assert summary.read_json_checked(tmp_path / "none.json", dict) == (None, "missing")
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert summary.read_json_checked(tmp_path / "ok.json", dict) == ({"a": 1}, None)
    assert summary.read_json_checked(tmp_path / "ok.json", list)[1] == "ok.json holds a JSON dict, not a list"


def test_time_step_records_wall_cpu_and_exit_status_and_keeps_the_log(tmp_path, capsys):
    code = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n" \
           "print('last line'); sys.exit(3)"
    rc = summary.time_step(tmp_path, "demo", [sys.executable, "-c", code])
    assert rc == 3
    record = json.loads((tmp_path / summary.TIMES / "demo.json").read_text())
    assert record["returncode"] == 3 and record["cpu_s"] >= 0.3 and record["wall_s"] >= record["cpu_s"] * 0.5
    assert (tmp_path / summary.LOGS / "demo.log").read_text().strip() == "last line"
    out = capsys.readouterr().out
    assert "FAILED (exit 3)" in out and "last line" in out


def test_format_summary_gives_wall_clock_of_overlapping_steps(outputs):
    text = summary.format_summary(summary.summary_rows(outputs))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["question", "script", "data"]
    assert len(lines) == 2 + len(summary.RUNS) + 1
    # steps ran 90-95 s, 95-98 s and 100-165 s: first start to last end 75 s, sum 73 s
    assert lines[-1] == "wall clock 1 min 15 s from the first start to the last end; sum of the steps 1 min 13 s"


def test_summary_cli_exit_status(outputs):
    proc = subprocess.run([sys.executable, "-m", "audiolab.report.summary", "--outputs", str(outputs)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "failed (exit 2)" in proc.stdout  # hw_cnn2d failed in the fixture
    proc = subprocess.run([sys.executable, "-m", "audiolab.report.summary", "time", "x"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.startswith("error: usage")


# ------------------------------------------------------------------ thread policy
@pytest.mark.parametrize("n_cpus, expected", [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_default_threads_is_half_the_cpus_between_1_and_4(n_cpus, expected):
    assert runtime.default_threads(n_cpus) == expected


def test_threads_flag_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        args = cli.base_parser("x", epochs=1).parse_args(["--threads", "3"])
        assert args.threads == 3 and torch.get_num_threads() == 3
        with pytest.raises(SystemExit):
            cli.base_parser("x").parse_args(["--threads", "0"])
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("env, expected", [({}, None), ({"OMP_NUM_THREADS": "2"}, 2)])
def test_import_applies_the_policy_unless_omp_num_threads_is_set(env, expected):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", "import audiolab.core.runtime as r, torch\n"
                           "print(torch.get_num_threads(), r.default_threads())"],
                          capture_output=True, text=True, cwd=REPO, env={**clean, **env}, check=True)
    got, policy = map(int, proc.stdout.split())
    assert got == (policy if expected is None else expected)


@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "5"], True), (["--epochs=5"], True), (["--ep", "5"], False), (["--epochs-extra"], False),
    (["--seed", "1"], False), (["--", "--epochs"], False), (["-e", "5"], False), ([], False),
])
def test_option_given_sees_the_flag_only_on_the_command_line(argv, expected):
    assert cli.option_given("--epochs", argv) is expected


def test_a_figure_only_part_shows_its_figure_or_says_the_run_did_not_make_it(outputs):
    write(outputs / "speechcommands_rnn/metrics.json", metrics("real", "speech_commands", test_accuracy_lstm=0.8))
    html = report.build_report(outputs).read_text(encoding="utf-8")
    assert "not made by this run: no <code>learning_curve.png</code>" in html
    (outputs / "speechcommands_rnn/learning_curve.png").write_bytes(b"png")
    html = report.build_report(outputs).read_text(encoding="utf-8")
    assert "not made by this run" not in html
    assert "<img src='speechcommands_rnn/learning_curve.png'" in html
