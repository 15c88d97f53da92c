"""Translate the SAM template to plain CloudFormation and create its resources in the local emulator.

The SAM template (infra/template.yaml) is the only description of Patchbay's resources; the local stack
and the tests create their table, queues and secret from it through moto's CloudFormation, so the two
cannot drift.

  python local/stack.py translate OUT.json          # SAM -> CloudFormation (offline, aws-sam-translator)
  python local/stack.py deploy --endpoint URL [--stack NAME] [--secret-json JSON]
        # prints one JSON line: {"table": ..., "work_queue_url": ..., "dlq_url": ..., "secret_id": ...}
"""

import argparse
import copy
import io
import json
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
CODE_BUCKET = "patchbay-local-code"
REGION = os.environ.get("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

# Values the local stack deploys with: x86_64 like this machine, the sandbox carrier.
LOCAL_PARAMETERS = {"Architecture": "x86_64", "Carrier": "sandbox"}


def load_sam() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


def translate(sam: dict, parameters: dict) -> dict:
    """SAM -> CloudFormation, offline. Local CodeUri paths become S3 locations in a local bucket,
    as `sam package` would upload them."""
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(sam)
    for name, res in sam.get("Resources", {}).items():
        if res.get("Type") == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = f"s3://{CODE_BUCKET}/{name}.zip"

    class OfflinePolicies:
        # Only policies named in `Policies:` are looked up; Patchbay's are inline statements.
        def load(self):
            return {}

    return transform(sam, parameters, OfflinePolicies())


def cmd_translate(args) -> None:
    cfn = translate(load_sam(), LOCAL_PARAMETERS)
    Path(args.out).write_text(json.dumps(cfn, indent=1, sort_keys=True))
    print(f"translated {TEMPLATE.relative_to(ROOT)} -> {args.out} ({len(cfn['Resources'])} resources)")


def client(service: str, endpoint: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def upload_code_placeholders(endpoint: str, cfn: dict) -> None:
    """moto creates the Lambda functions too; give them the S3 objects their Code points at. Locally
    the functions run in-process in the local stack, not from these zips."""
    s3 = client("s3", endpoint)
    s3.create_bucket(Bucket=CODE_BUCKET)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho 'runs in the local stack process, not here'\n")
    for res in cfn["Resources"].values():
        if res["Type"] == "AWS::Lambda::Function":
            s3.put_object(Bucket=CODE_BUCKET, Key=res["Properties"]["Code"]["S3Key"], Body=buf.getvalue())


def resolve(value, stack: str):
    """The few intrinsics the local-only resources use: a plain string, or Fn::Sub of pseudo parameters."""
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"].replace("${AWS::StackName}", stack).replace("${AWS::Region}", REGION)
    if isinstance(value, str):
        return value
    raise SystemExit(f"local/stack.py cannot resolve {value!r}; keep local-only resources to plain values and Fn::Sub")


def create_unsupported(endpoint: str, cfn: dict, stack: str) -> dict:
    """moto's CloudFormation has no AWS::SecretsManager::Secret; create those from the same template
    properties through the Secrets Manager API. Returns logical id -> physical id (the ARN)."""
    created = {}
    sm = client("secretsmanager", endpoint)
    for logical, res in cfn["Resources"].items():
        if res["Type"] != "AWS::SecretsManager::Secret":
            continue
        props = res.get("Properties", {})
        name = resolve(props.get("Name", {"Fn::Sub": "${AWS::StackName}-" + logical}), stack)
        created[logical] = sm.create_secret(
            Name=name,
            Description=resolve(props.get("Description", ""), stack),
            SecretString=resolve(props.get("SecretString", "{}"), stack),
        )["ARN"]
    return created


def disable_event_source_mappings(endpoint: str, physical: dict, types: dict) -> None:
    """Locally the worker is polled by the local stack (short polls, as the single-threaded emulator
    needs). moto would otherwise try to invoke the Lambda itself on every SendMessage."""
    lam = client("lambda", endpoint)
    for logical, kind in types.items():
        if kind == "AWS::Lambda::EventSourceMapping" and logical in physical:
            lam.update_event_source_mapping(UUID=physical[logical], Enabled=False)


def strip_stream_mappings(cfn: dict) -> list:
    """A stream's event source mapping, once moto creates it, makes every write try to invoke the
    function (through Docker, absent here) and then empties the stream; disabling it afterwards does
    not detach it. So it is left out of what moto creates; the local stack polls the stream itself and
    applies the mapping's filter in code (local/src/streams.rs). Returns the logical ids left out."""
    left_out = [
        logical
        for logical, res in cfn["Resources"].items()
        if res["Type"] == "AWS::Lambda::EventSourceMapping"
        and "StreamArn" in json.dumps(res.get("Properties", {}).get("EventSourceArn", ""))
    ]
    for logical in left_out:
        del cfn["Resources"][logical]
    return left_out


def cmd_deploy(args) -> None:
    cfn = translate(load_sam(), LOCAL_PARAMETERS)
    strip_stream_mappings(cfn)
    upload_code_placeholders(args.endpoint, cfn)
    extra = create_unsupported(args.endpoint, cfn, args.stack)
    cf = client("cloudformation", args.endpoint)
    # Outputs are for deployers (some name resources moto's CloudFormation skips, like function URLs);
    # the local stack reads physical ids from the stack's resources instead.
    cfn = {k: v for k, v in cfn.items() if k != "Outputs"}
    cf.create_stack(
        StackName=args.stack,
        TemplateBody=json.dumps(cfn),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in LOCAL_PARAMETERS.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cf.describe_stacks(StackName=args.stack)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        sys.exit(f"stack {args.stack} is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cf.describe_stack_resources(StackName=args.stack)["StackResources"]
        if "LogicalResourceId" in r and "PhysicalResourceId" in r
    }
    physical.update(extra)
    disable_event_source_mappings(args.endpoint, physical, {k: v["Type"] for k, v in cfn["Resources"].items()})
    sqs = client("sqs", args.endpoint)
    out = {
        "stack": args.stack,
        "table": physical["Table"],
        "work_queue_url": sqs.get_queue_url(QueueName=physical["WorkQueue"].rsplit("/", 1)[-1])["QueueUrl"],
        "dlq_url": sqs.get_queue_url(QueueName=physical["WorkDeadLetterQueue"].rsplit("/", 1)[-1])["QueueUrl"],
        "stream_arn": client("dynamodb", args.endpoint).describe_table(TableName=physical["Table"])["Table"]["LatestStreamArn"],
        "secret_id": physical["CarrierSecret"],
        # moto gives a bus no physical id: its name is the template's.
        "event_bus_name": resolve(cfn["Resources"]["EventBus"]["Properties"]["Name"], args.stack),
        "webhook_queue_url": sqs.get_queue_url(QueueName=physical["WebhookQueue"].rsplit("/", 1)[-1])["QueueUrl"],
        "resources": sorted(physical),
    }
    if args.secret_json:
        client("secretsmanager", args.endpoint).put_secret_value(SecretId=out["secret_id"], SecretString=args.secret_json)
    print(json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("translate")
    t.add_argument("out")
    d = sub.add_parser("deploy")
    d.add_argument("--endpoint", required=True)
    d.add_argument("--stack", default="patchbay-local")
    d.add_argument("--secret-json", default=None)
    args = p.parse_args()
    {"translate": cmd_translate, "deploy": cmd_deploy}[args.cmd](args)


if __name__ == "__main__":
    main()
