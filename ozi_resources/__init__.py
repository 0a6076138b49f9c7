"""Ozi's resources: every piece of I/O (Kafka, DuckDB, the embedded broker) and the settings
that point them at the embedded defaults or at production services."""
