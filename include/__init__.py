"""Business logic of the poverty-alleviation dynamic-management campaign, importable without Airflow."""
