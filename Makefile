.PHONY: help install start test test-unit test-integration test-airflow lint cluster bench bench-ingest bench-rules bench-reminders bench-limits

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

install:  ## create .venv with the pinned versions of requirements.lock
	scripts/bootstrap

start:  ## install, initialise the stores, write the demo campaign, start Airflow on :8080
	scripts/start $(ARGS)

test:  ## the whole suite, every tier (what CI runs; pytest options in ARGS=...)
	scripts/test $(ARGS)

test-unit:  ## unit tier: no Airflow, no process, no network (about 2.5 minutes here)
	CAMPAIGN_TEST_BROWSER=0 scripts/test -m "not integration and not airflow" $(ARGS)

test-integration:  ## integration tier: the campaign command, PostgreSQL, SMTP, Slack's fake API, the browser
	scripts/test -m integration $(ARGS)

test-airflow:  ## airflow tier: dag.test(), timetables, a real standalone Airflow, the Celery cluster and its drills
	scripts/test -m airflow $(ARGS)

cluster:  ## a compressed 2020-shandong on CeleryExecutor: PostgreSQL, Redis, two workers (ARGS=--drill restart-scheduler …)
	scripts/bootstrap && .venv/bin/campaign simulate 2020-shandong --span 4m --executor celery --workers 2 $(ARGS)

lint:  ## ruff (with Airflow's AIR rules) and import-linter (the layering in pyproject.toml)
	scripts/bootstrap && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports

bench:  ## DAG-file parse time against a bare interpreter
	scripts/bootstrap && .venv/bin/python bench/dag_parse.py

bench-ingest:  ## ingest a 100,000-member workbook against pandas and frictionless
	scripts/bootstrap && .venv/bin/python bench/ingest.py $(ARGS)

bench-rules:  ## the rule catalog over 1,000,000 households against pandera
	scripts/bootstrap && .venv/bin/python bench/rules.py $(ARGS)

bench-reminders:  ## 3,000 reminders through the outbox to a fake Slack limited per channel
	scripts/bootstrap && .venv/bin/python bench/reminders.py $(ARGS)

bench-limits:  ## bytes read before a refusal and memory per upload, against FastAPI's form parsing
	scripts/bootstrap && .venv/bin/python bench/upload_limits.py $(ARGS)
