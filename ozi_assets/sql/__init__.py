"""The pipeline's SQL, one file a transform, read from the package."""

from importlib import resources


def load(name: str) -> str:
    """Text of ``<name>.sql``; raises FileNotFoundError for an unknown name."""
    return resources.files(__name__).joinpath(f"{name}.sql").read_text()
