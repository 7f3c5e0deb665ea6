"""The command line as a newcomer meets it: real subprocesses, a fresh ``HOME`` and
``PREFECT_HOME``, no ``PREFECT_API_URL``, and bad input that must fail fast in one line."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from runtype_prefect.cli.processes import free_port

ROOT = Path(__file__).parents[1]
CLI = str(Path(sys.executable).parent / "runtype-prefect")
#: What a newcomer's shell does not have set.
UNSET = ("PREFECT_API_URL", "RUNTYPE_API_KEY", "RUNTYPE_BASE_URL", "RUNTYPE_PREFECT_DB")


def newcomer_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PREFECT_HOME=str(home / ".prefect"), **extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60):
    started = time.monotonic()
    done = subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return done, time.monotonic() - started


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_the_first_demo_on_a_fresh_machine_works(tmp_path):
    """The local Prefect server starts cold on a new PREFECT_HOME (creating its database takes
    ~20 s on 2 cores): the demo must wait for it and say so."""
    done, elapsed = run_cli(["demo", "--nights", "1"], newcomer_env(tmp_path), tmp_path, 600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "a local Prefect server starts for this command" in done.stdout
    assert "Last night" in done.stdout and "report:" in done.stdout
    assert "the sandbox planted nothing for" in done.stdout or "the sandbox's " in done.stdout
    assert (tmp_path / "runtype.duckdb").exists() and (tmp_path / "reports/report.html").exists()
    assert (tmp_path / "reports/report.html").stat().st_size < 3_000_000  # plotly.js packed
    # A quiet terminal: progress and results here, Prefect's own lines in its log file.
    log = tmp_path / "home/.prefect/logs/runtype-prefect.log"
    assert f"Prefect's logs: {log}" in done.stdout
    assert "Flow run" not in done.stdout + done.stderr and "Flow run" in log.read_text()
    assert "do not exist" not in log.read_text(), "the demo creates its limits"
    assert len(done.stdout.splitlines()) < 40, done.stdout
    print(f"\nfirst demo on a fresh PREFECT_HOME: {elapsed:.0f}s")


@pytest.mark.parametrize(
    "case",
    [
        "missing key",
        "wrong key",
        "unknown flow",
        "unreachable",
        "plain http",
        "sandbox port taken",
        "server port taken",
        "no sandbox to backfill",
        "sandbox beyond loopback",
        "misspelt record type",
        "no such folder",
        "no such jobs file",
    ],
)
def test_bad_input_fails_within_seconds_in_one_line(case, sandbox, admin, tmp_path, taken_port):
    flow = admin.flow_for("customer")
    good = {"RUNTYPE_API_KEY": sandbox.api_key, "RUNTYPE_BASE_URL": sandbox.base_url}
    run = ["run", "--flow-id", flow, "--record-type", "customer", "--db", str(tmp_path / "x")]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    args, env, expected = {
        "missing key": (run, {}, "no Runtype API key: set RUNTYPE_API_KEY"),
        "wrong key": (
            run,
            {**good, "RUNTYPE_API_KEY": "rt_test_wrong"},
            "rejected the API key (invalid or revoked API key): check RUNTYPE_API_KEY",
        ),
        "unknown flow": (
            [*run[:1], "--flow-id", "flow_nope", *run[3:]],
            good,
            "flow 'flow_nope' does not exist",
        ),
        "unreachable": (
            run,
            {**good, "RUNTYPE_BASE_URL": dead},
            "cannot reach the Runtype API",
        ),
        "plain http": (
            run,
            {**good, "RUNTYPE_BASE_URL": "http://api.example.com/v1"},
            "refusing plain http:// to 'api.example.com'",
        ),
        "sandbox port taken": (
            ["sandbox", "--port", str(taken_port)],
            {},
            f"port {taken_port} on 127.0.0.1 is already in use",
        ),
        "server port taken": (
            ["server", "--port", str(taken_port), "--sandbox-port", str(free_port())],
            {},
            f"port {taken_port} for the Prefect server is already in use",
        ),
        "sandbox beyond loopback": (
            ["sandbox", "--host", "0.0.0.0", "--port", "0"],
            {},
            "--host 0.0.0.0 would let other machines reach the sandbox and its controls:"
            " pass --public",
        ),
        "no sandbox to backfill": (
            ["backfill", "--nights", "1"],
            {"RUNTYPE_BASE_URL": dead},
            "no sandbox answers",
        ),
        # Checked before Prefect starts: a typo costs seconds, not a server start.
        "misspelt record type": (
            [*run[:3], "--record-type", "custmer", *run[5:]],
            good,
            "record type: 'custmer' has no records (misspelt?); record types that exist:",
        ),
        "no such folder": (
            [*run[:5], "--db", str(tmp_path / "typo" / "runtype.duckdb")],
            good,
            f"the warehouse's folder {str(tmp_path / 'typo')!r} does not exist",
        ),
        "no such jobs file": (
            ["backfill", "--nights", "1", "--jobs-file", "jobs.yml"],
            {"RUNTYPE_BASE_URL": sandbox.base_url},
            "jobs file 'jobs.yml' does not exist",
        ),
    }[case]
    done, elapsed = run_cli(args, newcomer_env(tmp_path, **env), tmp_path)
    output = (done.stdout + done.stderr).strip()
    # The README's exit codes: 4 a record type without records, 5 a failed preflight.
    assert done.returncode == {"misspelt record type": 4, "no such folder": 5}.get(case, 1), output
    assert not (tmp_path / "typo").exists()  # a mistyped warehouse path is never created
    assert output.startswith("error: ") and "\n" not in output, output
    assert expected in output
    assert elapsed < 10, f"{case} took {elapsed:.1f}s"
    assert admin.stats()["runsStarted"] == 0  # and, one line: nothing set up or deployed


def test_verbose_shows_the_traceback(tmp_path):
    done, _ = run_cli(
        ["--verbose", "run", "--flow-id", "f", "--record-type", "t"],
        newcomer_env(tmp_path),
        tmp_path,
    )
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_the_readme_lists_the_exit_codes_the_command_line_uses():
    from runtype_prefect.cli.exit_codes import ExitCode

    text = (ROOT / "README.md").read_text()
    table = text[text.index("**Exit codes**") :].split("\n\n")[1].splitlines()
    listed = {int(row.split("|")[1]) for row in table[2:]}
    assert listed == {code.value for code in ExitCode}


def test_help_and_version_answer_without_loading_the_client_or_prefect(tmp_path):
    """The command line parses its arguments before it imports the client (Arrow, httpx) or
    Prefect: --help, --version and every one-line error come back within a second or two."""
    from runtype_prefect.cli.app import DEFAULT_API_KEY
    from runtype_prefect.client.sandbox_control import SANDBOX_TEST_KEY

    assert DEFAULT_API_KEY == SANDBOX_TEST_KEY
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runtype_prefect.cli.app;"
            " print(sorted(m for m in ('prefect', 'runtype_prefect.client', 'pyarrow')"
            " if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
    done, _ = run_cli(["--version"], newcomer_env(tmp_path), tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("runtype-prefect 0."), done.stdout


def test_the_demo_says_degraded_lines_are_expected_only_when_there_are_some():
    from runtype_prefect.cli.demo import planted_line
    from runtype_prefect.sandbox.simulation import planted_on

    night = next(f"2026-12-{day:02d}" for day in range(1, 32) if planted_on(date(2026, 12, day)))
    assert "DEGRADED lines above are expected" in planted_line(night, degraded=2)
    quiet = planted_line(night, degraded=0)
    assert "expected" not in quiet and "the gate flagged none of it" in quiet


def test_help_reads_whole_at_80_columns():
    """At 80 columns every command's help keeps its option names whole, prints no type beside
    a flag and wraps its description at the terminal's width, not the docstring's."""
    from typer.testing import CliRunner

    from runtype_prefect.cli.app import app
    from runtype_prefect.cli.help_format import reflow

    runner = CliRunner()
    commands = ["", *(c.name or c.callback.__name__ for c in app.registered_commands)]
    for command in commands:
        done = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "80"})
        assert done.exit_code == 0, done.output
        lines = done.output.splitlines()
        assert max(len(line) for line in lines) <= 80
        assert "…" not in done.output and "<bool>" not in done.output, done.output
        # The description (above the option panels): a line ends before the terminal's edge
        # only where its paragraph ends.
        description = done.output.split("╭")[0].splitlines()[3:]
        for line, following in itertools.pairwise(description):
            if line.strip() and following.strip():
                assert len(line.rstrip()) > 60, f"{command}: broken line {line!r}"
    assert reflow("one\n    two\n\n    three") == "one two\n\nthree"
