"""The door: what units hand in (reports, workbooks), their tokens, entry windows and status."""
