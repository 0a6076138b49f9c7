"""Ozi's Dagster code location: Farcaster events from Kafka through raw → clean → aggregates.

Modules read in data-flow order: partitions, raw, clean, checks, aggregates, sensors, jobs,
definitions. The CLI (`ozi`) is cli.py.
"""
