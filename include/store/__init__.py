"""The campaign-state store: SQLAlchemy 2 models, engine and Alembic migrations."""
