"""Data access: the only package that talks to DynamoDB. PynamoDB models never leave it."""

from costbrake.dal.ledger import ChargesRefused, Ledger, ReservationContended, TransactionStats

__all__ = ["ChargesRefused", "Ledger", "ReservationContended", "TransactionStats"]
