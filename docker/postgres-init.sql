-- Runs once, when the PostgreSQL volume is created: the campaign store's database beside Airflow's.
CREATE DATABASE campaign OWNER campaign;
