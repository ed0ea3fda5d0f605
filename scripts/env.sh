# Environment of a local run: sourced by scripts/start and scripts/test.
# Every run-time file goes under CAMPAIGN_HOME (default .campaign/ in the checkout).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CAMPAIGN_HOME="${CAMPAIGN_HOME:-$ROOT/.campaign}"
# A local run: tokens may be hashed with the development key, the store is created on first use.
export CAMPAIGN_LOCAL_RUN="${CAMPAIGN_LOCAL_RUN:-1}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$CAMPAIGN_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
# Local runs only: every visitor of the UI and REST API is an admin, no login.
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:${AIRFLOW__API__PORT}/execution/"
# Airflow's SQLite metadata DB: wait for locks instead of crashing (see include/devtools/airflow_sqlite.py).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=include.devtools.airflow_sqlite.CONNECT_ARGS
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC=include.devtools.airflow_sqlite.CONNECT_ARGS_ASYNC
export PATH="$ROOT/.venv/bin:$PATH"
