#!/bin/sh
# Lambda handler of the gateway (Handler: run.sh). The Lambda Web Adapter layer (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# starts this script, waits until GET $AWS_LWA_READINESS_CHECK_PATH answers, then forwards every invoke as an HTTP
# request to 127.0.0.1:$AWS_LWA_PORT and streams the response back (AWS_LWA_INVOKE_MODE=response_stream).
# The script runs outside Lambda's Python bootstrap, so the import path is set here: the dependency layer
# (/opt/python: costbrake and its pinned dependencies, with bytecode), then the runtime's boto3 ($LAMBDA_RUNTIME_DIR).
# `python` is the runtime's interpreter (/var/lang/bin comes first on PATH), as in the adapter's own examples.
PYTHONPATH="/opt/python:${LAMBDA_RUNTIME_DIR:-/var/runtime}:${LAMBDA_TASK_ROOT:-.}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# --factory: uvicorn calls create_app(), the composition root, which wires the gateway from validated settings.
exec python -m uvicorn --factory costbrake.gateway.asgi:create_app \
    --host 127.0.0.1 --port "${AWS_LWA_PORT:-${PORT:-8080}}" \
    --no-access-log --lifespan off
