from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its home when first imported: the test session gets homes of its own, never a user's.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="campaign-tests-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["CAMPAIGN_HOME"] = tempfile.mkdtemp(prefix="campaign-tests-home-")
os.environ.pop("CAMPAIGN_DB_URL", None)
os.environ["CAMPAIGN_LOCAL_RUN"] = "1"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)

import pytest  # noqa: E402

from include.cli.main import main  # noqa: E402

# The tiers (README "Tests"): a test is a unit test unless marked. A unit test starts no process, opens no network
# connection and uses no Airflow: the guard below fails one that does, so a test cannot sit in the wrong tier.
TIERS = ("integration", "airflow")
OUT_OF_UNIT = (
    "airflow",
    "include.orchestration",
    "include.gates",  # the moved-path shims import orchestration
    "include.timetable",
    "include.reminder_timetable",
    "include.devtools.simulation",
    "include.devtools.local_airflow",
    "include.devtools.cluster",
)


def tier(item: pytest.Item) -> str:
    return next((name for name in TIERS if item.get_closest_marker(name)), "unit")


class _UnitGuard:
    """An audit hook (PEP 578), armed while a unit test and its fixtures run."""

    armed_for: str | None = None

    @classmethod
    def audit(cls, event: str, args: tuple) -> None:
        if cls.armed_for is None:
            return
        if event in {"subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.forkpty"}:
            cls.refuse(f"starts a process ({event} {str(args[:2])[:200]})")
        elif event == "socket.connect" and getattr(args[0], "family", None) in {2, 10}:  # AF_INET, AF_INET6
            cls.refuse(f"connects to {args[1]}")
        elif event == "import" and args[0].startswith(OUT_OF_UNIT) and not cls.airflow_imports_itself():
            cls.refuse(f"imports {args[0]}")

    @staticmethod
    def airflow_imports_itself() -> bool:
        """Whether the import comes from Airflow's own code: once anything in the session has imported Airflow, its
        ORM listener loads Airflow's models whenever any SQLAlchemy mapper is configured, ours included."""
        frame = sys._getframe(2)
        while frame is not None and (
            frame.f_code.co_filename.startswith("<frozen") or "importlib" in frame.f_code.co_filename
        ):
            frame = frame.f_back
        return frame is not None and str(frame.f_globals.get("__name__", "")).startswith("airflow")

    violations: ClassVar[list[str]] = []

    @classmethod
    def refuse(cls, what: str) -> None:
        """Raise in the offending call, and keep it: a test that catches the error still fails at its end."""
        message = f"{cls.armed_for} is a unit test but {what}: mark it integration or airflow (tests/conftest.py)"
        cls.violations.append(message)
        raise RuntimeError(message)


sys.addaudithook(_UnitGuard.audit)


def _guarded(item: pytest.Item):
    _UnitGuard.armed_for = item.nodeid if tier(item) == "unit" else None
    _UnitGuard.violations.clear()
    try:
        result = yield
    finally:
        _UnitGuard.armed_for = None
    if _UnitGuard.violations:
        pytest.fail(_UnitGuard.violations[0], pytrace=False)
    return result


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(_guarded)  # a unit test's fixtures
pytest_runtest_call = pytest.hookimpl(wrapper=True)(_guarded)  # and the test itself


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A unit test's module may not hold Airflow (or the packages built on it) from its own imports."""
    for item in items:
        module = getattr(item, "module", None)
        if tier(item) != "unit" or module is None:
            continue
        callspec = getattr(item, "callspec", None)
        if "postgres" in getattr(item, "fixturenames", ()) or (callspec and "postgresql" in callspec.id):
            # libpq opens its socket in C, out of the audit hook's sight: a PostgreSQL test is named as one
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses PostgreSQL: mark it integration")
        imported_inside = [
            name
            for name in getattr(getattr(item, "function", None), "__code__", compile("", "", "exec")).co_names
            if name.startswith(OUT_OF_UNIT)
        ]
        if imported_inside:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but imports {imported_inside[0]}: mark it airflow")
        for name, value in vars(module).items():
            source = value.__name__ if isinstance(value, type(sys)) else getattr(value, "__module__", None) or ""
            if source.startswith(OUT_OF_UNIT):
                raise pytest.UsageError(
                    f"{item.nodeid} is a unit test but its module imports {name} from {source}: mark it airflow"
                )


SEEDS = ROOT / "docs" / "seeds"  # the five source documents, the specification (a copy of ../shared/seeds)
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"
SEED_FILES = {
    "000": "000_a43a35703e24dac8.txt",
    "001": "001_75f64364fef16825.txt",
    "002": "002_be45378c2c8f6dcb.txt",
    "003": "003_9f67e561e8efc1ae.txt",
    "004": "004_371bf13e07ef619c.txt",
}


class Clock:
    """A settable clock for an app under test (the API takes its clock as a parameter)."""

    def __init__(self, at: str) -> None:
        from include.calendar.instants import parse_instant

        self.now = parse_instant(at)

    def __call__(self):
        return self.now


def squash(text: str) -> str:
    """Seed text without whitespace, so that a quote matches across the documents' line breaks."""
    return re.sub(r"\s+", "", text)


def require_seeds() -> None:
    """The seed documents are the specification: the tests that quote them skip where they are missing (a
    partial checkout), but under CI (``CI=true``) their absence fails, so that a quote check can never pass
    by not running."""
    if SEEDS.is_dir() and any(SEEDS.glob("*.txt")):
        return
    message = f"seed documents not found at {SEEDS}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def seed_text():
    require_seeds()

    def read(name: str) -> str:
        return squash((SEEDS / name).read_text(encoding="utf-8"))

    return read


@pytest.fixture
def run_cli(capsys):
    """Run the campaign command in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def show_json(run_cli):
    def show(calendar_id: str) -> dict:
        code, out, err = run_cli("calendar", "show", calendar_id, "--json")
        assert code == 0, err
        return json.loads(out)

    return show


@pytest.fixture(autouse=True)
def _campaign_home(tmp_path, monkeypatch):
    """Every test writes its run-time files to a home of its own."""
    monkeypatch.setenv("CAMPAIGN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CAMPAIGN_DB_URL", raising=False)


def database_urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'store.db'}"]
    if os.environ.get("CAMPAIGN_TEST_POSTGRES_URL"):
        urls.append(os.environ["CAMPAIGN_TEST_POSTGRES_URL"])
    return urls


def simulate(
    tmp_path: Path, *args: str, campaign: str = "2020-shandong"
) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`campaign simulate CAMPAIGN --span 4m` with ``args``; its output and outcome (JSON) back."""
    outcome = tmp_path / "outcome.json"
    command = [str(Path(sys.executable).parent / "campaign"), "simulate", campaign, "--span", "4m"]
    result = subprocess.run(
        [*command, "--outcome", str(outcome), *args], capture_output=True, text=True, timeout=1800, check=False
    )
    print(result.stdout[-8000:])
    return result, json.loads(outcome.read_text(encoding="utf-8")) if outcome.exists() else None


@pytest.fixture(scope="session")
def sqlite_simulation(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict | None]:
    """One play of 2020-shandong on `airflow standalone` and SQLite, shared by the tests that compare with it."""
    return simulate(tmp_path_factory.mktemp("sqlite-simulation"))


# -- a unit's filled-in workbook: 济南市's 附件1 of 2020-shandong (tests/test_ingest.py, test_workbook_trials.py) --

WORKBOOK_CAMPAIGN, WORKBOOK_FORM, WORKBOOK_UNIT = "2020-shandong", "2020-1", "370100"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    """40 synthetic households of 济南市, one household in five with a defect that passes ingestion."""
    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--campaign", WORKBOOK_CAMPAIGN, "--households", "40", "--defect-rate", "0.2",
                 "--seed", "11", "--out", str(out), "--units", WORKBOOK_UNIT]) == 0  # fmt: skip
    return out


@pytest.fixture
def good(synth_dir, tmp_path) -> Path:
    """A copy of the synthetic workbook of 济南市, for a test to change."""
    import shutil

    target = tmp_path / "good.xlsx"
    shutil.copy(synth_dir / f"{WORKBOOK_CAMPAIGN}-{WORKBOOK_FORM}-{WORKBOOK_UNIT}.xlsx", target)
    return target


@pytest.fixture
def window_open(run_cli):
    """济南市's entry window open: its completion report is in (seed 000: "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办")."""
    code, _, err = run_cli("report", "submit", "--campaign", WORKBOOK_CAMPAIGN, "--unit", WORKBOOK_UNIT,
                           "--milestone", "completion_report", "--at", "2020-11-12T10:00+08:00")  # fmt: skip
    assert code == 0, err
