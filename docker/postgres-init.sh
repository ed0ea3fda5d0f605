#!/bin/bash
# Runs once, when the PostgreSQL volume is created: a role of its own per store, neither a superuser.
# Airflow's metadata belongs to `airflow`; the campaign store to `campaign` (owner of its database only,
# so it can run its migrations there and nothing else). The superuser `postgres` is for the operator.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" -v campaign_password="$CAMPAIGN_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE campaign LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'campaign_password';
CREATE DATABASE campaign OWNER campaign;
REVOKE ALL ON DATABASE airflow, campaign FROM PUBLIC;
SQL
