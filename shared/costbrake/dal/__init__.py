"""Data access: the only package that talks to DynamoDB. PynamoDB models never leave it.

One store per audience, each on the ``Tables`` it is built with (``costbrake.wiring`` builds them): ``spend``
(the gateway's hot path), ``admin`` (operators), ``alert_log``, ``calls``, ``reservations`` (the sweeper),
``rollups`` (the pipeline) and ``cache`` (the response cache).
"""
