"""The Airflow glue: DAGs, gates, timetables, sensors and triggers. The only package that imports Airflow."""
