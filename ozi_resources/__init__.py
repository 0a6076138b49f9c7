"""Ozi's resources: every piece of I/O (Kafka, the DuckLake, the vector indexes, the embedded
broker and the vector shard's owner) and the settings that point them at the embedded
defaults or at production services."""
