"""docker/: the image installs exactly the project's pins; the compose file has every service a province runs,
each with a health check, the stores on PostgreSQL, Celery on Redis, and secrets only from the environment.

Docker cannot run on this machine (no engine), so these read the files as an operator's tools would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from include.paths import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)(?:\[[^\]]*\])?==(\S+)")
SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "CAMPAIGN_DB_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "CAMPAIGN_TOKEN_PEPPER",
    "SLACK_BOT_TOKEN",
    "CAMPAIGN_APPROVERS",  # not a secret, but the deployment's own: who may approve
)


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            found[_name(match[1])] = match[2]
    return found


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def test_the_image_is_the_official_airflow_of_the_pinned_version_and_python():
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+apache/airflow:(\S+)-python(\S+)\s*$", dockerfile, re.MULTILINE)
    assert base, "the image must start from the official apache/airflow image"
    assert base[1] == pins(PROJECT_ROOT / "requirements.lock")["apache-airflow"] == "3.3.2"
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert base[2] == "3.11" and project["requires-python"].startswith(">=3.11,<3.12")


def test_the_image_installs_exactly_the_versions_the_project_pins():
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    installs = [line for line in dockerfile.splitlines() if re.match(r"RUN pip install", line)]
    assert any("--no-deps -r docker/requirements.txt" in line for line in installs), installs
    assert all("--no-deps" in line for line in installs), "nothing may be resolved again inside the image"
    image, lock = pins(DOCKER / "requirements.txt"), pins(PROJECT_ROOT / "requirements.lock")
    assert len(image) > 100
    differ = {name: (version, lock.get(name)) for name, version in image.items() if lock.get(name) != version}
    assert differ == {}, f"docker/requirements.txt and requirements.lock disagree: {differ}"
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    direct = {_name(re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    assert direct - set(image) == set(), "every runtime dependency is pinned in the image"
    dev = {_name(re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0]) for spec in project["optional-dependencies"]["dev"]}
    assert dev & set(image) == set(), "test tools stay out of the image"


@pytest.mark.integration
def test_no_secret_is_baked_into_the_image():
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if re.match(r"\s*(ENV|ARG)\b", line) or line.startswith("    "):
            assert not re.search(r"TOKEN|PASSWORD|SECRET|PEPPER|FERNET", line), line
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".env", "docker/.env", ".campaign", ".venv", ".git"} <= set(ignored)
    tracked = subprocess.run(
        ["git", "check-ignore", "docker/.env"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert tracked.stdout.strip() == "docker/.env", "docker/.env must never be committed"


def test_compose_runs_every_airflow_component_with_a_health_check(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "api-server", "scheduler", "dag-processor", "triggerer", "worker"):
        assert name in services, name
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    commands = {name: " ".join(service.get("command", [])) for name, service in services.items()}
    assert commands["api-server"] == "airflow api-server" and commands["scheduler"] == "airflow scheduler"
    assert commands["dag-processor"] == "airflow dag-processor" and commands["triggerer"] == "airflow triggerer"
    assert commands["worker"] == "airflow celery worker"
    assert "airflow db migrate" in commands["init"] and "campaign db upgrade" in commands["init"]
    assert "airflow fab-db migrate" in commands["init"]
    for name in ("api-server", "scheduler", "dag-processor", "triggerer", "worker"):
        service = services[name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile" and service["restart"] == "always"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert "campaign-data:/opt/campaign-data" in service["volumes"]
    assert "worker" not in str(services["worker"].get("container_name", "")), "a fixed name would stop --scale"


def test_compose_puts_both_stores_on_postgres_and_celery_on_redis(compose):
    for name in ("api-server", "scheduler", "worker"):
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert re.match(r"postgresql\+psycopg2://airflow:\$\{AIRFLOW_DB_PASSWORD:\?[^}]*\}@postgres:5432/airflow$",
                        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])  # fmt: skip
        assert re.match(r"postgresql\+psycopg://campaign:\$\{CAMPAIGN_DB_PASSWORD:\?[^}]*\}@postgres:5432/campaign$",
                        env["CAMPAIGN_DB_URL"])  # fmt: skip
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    init = (DOCKER / "postgres-init.sh").read_text(encoding="utf-8")
    assert "CREATE DATABASE campaign OWNER campaign" in init and "NOSUPERUSER" in init
    assert "./postgres-init.sh:/docker-entrypoint-initdb.d/roles.sh:ro" in compose["services"]["postgres"]["volumes"]


def test_secrets_come_only_from_the_environment(compose):
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))  # $${...} is the container shell's
    assert used == set(SECRETS)
    env = compose["services"]["worker"]["environment"]
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "CAMPAIGN_TOKEN_PEPPER"):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), f"{key} must be required from the environment"
    assert env["SLACK_BOT_TOKEN"] == "${SLACK_BOT_TOKEN:-}"  # optional: without it reminders go to the sink
    # Named users (the FAB auth manager), and the approvals assigned to the province's officers.
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    assert re.fullmatch(r"\$\{CAMPAIGN_APPROVERS:\?[^}]+\}", env["CAMPAIGN_APPROVERS"])
    example = (DOCKER / "env.example").read_text(encoding="utf-8")
    assert {line.split("=")[0] for line in example.splitlines() if re.match(r"[A-Z_]+=", line)} == set(SECRETS)
    assert all(line.endswith("=") for line in example.splitlines() if re.match(r"[A-Z_]+=", line)), "no values"


@pytest.mark.integration
def test_the_image_leaves_devtools_out_and_production_code_works_without_it():
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "include/devtools" in ignored
    # As in the image: include.devtools cannot be imported. The command, the DAG files and the web app still load.
    script = (
        "import importlib.abc, runpy, sys\n"
        "class NoDevtools(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'include.devtools' or name.startswith('include.devtools.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoDevtools())\n"
        "from include.cli.main import build_parser\n"
        "commands = build_parser()._subparsers._group_actions[0].choices\n"
        "for dag_file in sys.argv[1:]:\n"
        "    runpy.run_path(dag_file)\n"
        "from include.web.app import create_app\n"
        "create_app()\n"
        "print(' '.join(sorted(commands)))\n"
    )
    dag_files = [str(path) for path in sorted((PROJECT_ROOT / "dags").glob("*.py"))]
    # The local runs' SQLite tuning of Airflow (scripts/env.sh) is devtools' too; the image's compose sets none.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")}
    done = subprocess.run(
        [sys.executable, "-c", script, *dag_files],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    commands = done.stdout.split()
    assert {"report", "ingest", "validate", "remind", "progress", "status", "db"} <= set(commands)
    assert "simulate" not in commands and "synth" not in commands
