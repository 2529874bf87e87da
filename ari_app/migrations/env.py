"""Alembic environment: the URL comes from `ari_app.adapters.db.migrate`, never from a file."""

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

from ari_app.adapters import tables  # noqa: F401  (registers the tables on the metadata)

url = context.config.attributes["url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
