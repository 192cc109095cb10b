"""Prints template.yaml as CloudFormation after the SAM transform (run by the SAM CLI's own Python, offline).

Usage: <sam venv>/bin/python sam_transform.py TEMPLATE. Local code locations become a placeholder S3 URI (sam deploy
uploads them), managed policies resolve from a fixed table: no AWS account is needed.
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class PolicyLoader:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://placeholder-bucket/placeholder-key"
    json.dump(transform(template, {}, PolicyLoader()), sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
