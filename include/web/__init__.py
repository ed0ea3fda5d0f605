"""The HTTP API and the pages, mounted in Airflow's api-server by the plugin."""
