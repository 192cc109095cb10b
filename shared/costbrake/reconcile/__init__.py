"""Reconciliation: costbrake's ledger against the providers' own usage and cost reports (docs/reconciliation.md).

``figures`` holds the plain records, ``compare`` the pure comparison (exact Decimal, the time passed in),
``admin_api`` the providers' Usage & Cost Admin API clients, ``alerts`` the SNS alerts and EMF metrics, ``store``
the daily status kept in the ledger table for reports, ``run`` the wiring the CLI and the Lambda share.
"""
