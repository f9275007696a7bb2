"""CatalogDatabase: where the catalog lives (SQLite for one machine, PostgreSQL in production)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, SecretStr, field_validator

from catalog.db import check_url


class CatalogDatabase(Block):
    """The catalog database's connection URL, kept secret (it may hold a password).

    Example:
        ```python
        from blocks.catalog_db import CatalogDatabase
        CatalogDatabase(url="postgresql+psycopg://lightbox:***@db:5432/lightbox").save("catalog")
        url = CatalogDatabase.load("catalog").get_url()
        ```
    """

    model_config = ConfigDict(hide_input_in_errors=True)  # a bad URL's error must not quote it
    _block_type_name = "Lightbox Catalog Database"
    _description = "SQLAlchemy URL of the Lightbox catalog (sqlite:/// or postgresql+psycopg://)"

    url: SecretStr = Field(description="sqlite:///PATH or postgresql+psycopg://USER:PASS@HOST:PORT/DB")

    @field_validator("url")
    @classmethod
    def _valid(cls, value: SecretStr) -> SecretStr:
        check_url(value.get_secret_value())
        return value

    def get_url(self) -> str:
        return self.url.get_secret_value()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from catalog.db import migrate

        migrate(self.get_url())
