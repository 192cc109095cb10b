"""The names of spend scopes, shared by counters, rollups, anomalies and reports: defined once."""

from __future__ import annotations

GLOBAL_SCOPE = "global"
FEATURE_PREFIX = "feature#"
USER_PREFIX = "user#"
MODEL_PREFIX = "model#"
KEY_PREFIX = "key#"
