"""Cost reducers (issue 12), as pure logic: which requests may be cached and under which key (``request_key``),
similarity search over a feature's bounded set of recent questions (``semantic``), history truncation to an input
budget (``truncation``) and the decision of what to try for a request (``plan``).

Nothing here reads the environment or talks to DynamoDB or a provider: ``costbrake.dal.cache`` stores the
answers and vectors, the gateway calls both.
"""
