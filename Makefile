.PHONY: help install start test lint cluster bench bench-ingest bench-rules bench-reminders bench-limits

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install:  ## create .venv with the pinned versions of requirements.lock
	scripts/bootstrap

start:  ## install, initialise the stores, write the demo campaign, start Airflow on :8080
	scripts/start $(ARGS)

test:  ## run the whole test suite (pytest options in ARGS=...)
	scripts/test $(ARGS)

cluster:  ## a compressed 2020-shandong on CeleryExecutor: PostgreSQL, Redis, two workers (ARGS=--drill restart-scheduler …)
	scripts/bootstrap && .venv/bin/campaign simulate 2020-shandong --span 4m --executor celery --workers 2 $(ARGS)

lint:  ## ruff, with Airflow's AIR rules
	scripts/bootstrap && .venv/bin/ruff check . && .venv/bin/ruff format --check .

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
