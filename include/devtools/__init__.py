"""Tools for development and trials, kept out of the production image: simulation, local and cluster
runners, synthetic workbooks, the SQLite tuning of a local Airflow."""
