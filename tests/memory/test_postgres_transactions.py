"""The app database's transactions on PostgreSQL (real PostgreSQL): a read runs outside a transaction
block (under READ COMMITTED each statement has its own snapshot either way; a BEGIN and a ROLLBACK
around it were two round trips for nothing), and so does `write_each` (work whose every statement
stands alone); a write runs inside one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from citadel.memory.database import create_engine
from citadel.memory.transactions import EngineTransactions
from citadel.settings import Settings

XID = text("select txid_current()")  # the transaction's id (one is assigned if it had none)


def _own_transaction(connection: Connection) -> bool:
    """Whether each statement ran in a transaction of its own."""
    return connection.execute(XID).scalar_one() != connection.execute(XID).scalar_one()


async def test_a_read_and_write_each_are_their_statements_own_transactions_and_a_write_one_transaction(
    make_settings: Any, database_url: str
) -> None:
    settings: Settings = make_settings(database_url=database_url)
    engine = create_engine(settings)
    transactions = EngineTransactions(engine)
    try:
        assert await transactions.read(_own_transaction)
        assert not await transactions.write(_own_transaction)
        assert await transactions.read(_own_transaction)  # the connection back in the pool, reset
        assert await transactions.write_each(_own_transaction)
        assert not await transactions.write(_own_transaction)
    finally:
        await transactions.close()
        await engine.dispose()
