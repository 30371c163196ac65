"""The AWS CLI's EC2 calls that the training-runner jobs make, answered from a JSON file that stands
in for the account; tests/act/bin/aws records each command line and hands its arguments over. It
never talks to AWS and models only what the workflows call, refusing anything else (exit 2).

    ec2 run-instances  --image-id --instance-type --count 1 --user-data file://PATH
                       --instance-initiated-shutdown-behavior --metadata-options
                       --tag-specifications "ResourceType=R,Tags=[{Key=K,Value=V},...]" ...
                       [--subnet-id] [--security-group-ids ...]   one instance, pending
    ec2 wait instance-running | instance-terminated --instance-ids ID...
    ec2 describe-instances --filters "Name=N,Values=V1,V2" ...     N: tag:KEY, tag-key,
                       instance-state-name, instance-id
    ec2 terminate-instances --instance-ids ID...

Every call takes `--output json` or nothing (JSON is the CLI's default); `--query` is not modelled
(the workflows filter with jq). Without credentials in the environment (what
configure-aws-credentials exports) or a region, the call fails as the CLI does. The account is
$STUB_EC2_STATE (default $STUB_RECORD/ec2.json): {"instances": [{InstanceId, ImageId, InstanceType,
State: {Name}, Tags: [{Key, Value}], LaunchTime, UserData, ...}]}; a test may write instances
there first (an orphan for the sweeper). Shapes after the EC2 API reference
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html and its siblings).
"""

import json
import os
import re
import sys
import time
from pathlib import Path

NOT_MODELLED = 2
SHORTHAND_TAG = re.compile(r"\{Key=([^,}]+),Value=([^}]*)\}")
SPECIFICATION = re.compile(r"^ResourceType=([a-z-]+),Tags=\[(.*)\]$")
LIVE = ("pending", "running", "stopping", "stopped")


def fail(message: str, code: int = 254) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def options(args: list[str]) -> dict[str, list[str]]:
    """`--name v1 v2 --other v` as the CLI reads it: every value up to the next option."""
    found: dict[str, list[str]] = {}
    name = None
    for arg in args:
        if arg.startswith("--"):
            name = arg[2:]
            found.setdefault(name, [])
        elif name is None:
            fail(f"aws stand-in: unexpected argument {arg!r}", NOT_MODELLED)
        else:
            found[name].append(arg)
    return found


def state_path() -> Path:
    return Path(os.environ.get("STUB_EC2_STATE") or Path(os.environ["STUB_RECORD"], "ec2.json"))


def load() -> dict:
    path = state_path()
    return json.loads(path.read_text()) if path.exists() else {"instances": []}


def save(state: dict) -> None:
    state_path().write_text(json.dumps(state, indent=1))


def one(found: dict[str, list[str]], name: str, required: bool = True) -> str | None:
    values = found.pop(name, None)
    if values is None:
        if required:
            fail(f"aws: error: the following arguments are required: --{name}", 252)
        return None
    if len(values) != 1:
        fail(f"aws stand-in: --{name} takes one value, got {values}", NOT_MODELLED)
    return values[0]


def tags_of(specification: str) -> tuple[str, list[dict]]:
    match = SPECIFICATION.match(specification)
    if not match:
        fail(f"aws stand-in: tag specification {specification!r} is not modelled", NOT_MODELLED)
    pairs = SHORTHAND_TAG.findall(match[2])
    if "".join(f"{{Key={k},Value={v}}}" for k, v in pairs) != match[2].replace("},{", "}{"):
        fail(f"Error parsing parameter '--tag-specifications': {specification!r}", 252)
    return match[1], [{"Key": key, "Value": value} for key, value in pairs]


def run_instances(found: dict[str, list[str]], state: dict) -> dict:
    image = one(found, "image-id")
    if not re.fullmatch(r"ami-[0-9a-f]{8,17}", image):
        fail(
            "An error occurred (InvalidAMIID.Malformed) when calling the RunInstances operation: "
            f'Invalid id: "{image}"'
        )
    if one(found, "count") != "1":
        fail("aws stand-in: only --count 1 is modelled", NOT_MODELLED)
    behaviour = one(found, "instance-initiated-shutdown-behavior")
    if behaviour not in ("stop", "terminate"):
        fail(f"aws stand-in: shutdown behaviour {behaviour!r}", NOT_MODELLED)
    user_data = one(found, "user-data")
    if not user_data.startswith("file://"):
        fail("aws stand-in: only --user-data file://PATH is modelled", NOT_MODELLED)
    tags: dict[str, list[dict]] = {}
    for specification in found.pop("tag-specifications", []):
        resource, listed = tags_of(specification)
        tags[resource] = listed
    instance = {
        "InstanceId": f"i-{len(state['instances']) + 1:017x}",
        "ImageId": image,
        "InstanceType": one(found, "instance-type"),
        "State": {"Name": "pending"},
        "Tags": tags.get("instance", []),
        "VolumeTags": tags.get("volume", []),
        "LaunchTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "InstanceInitiatedShutdownBehavior": behaviour,
        "MetadataOptions": one(found, "metadata-options"),
        "SubnetId": one(found, "subnet-id", required=False),
        "SecurityGroupIds": found.pop("security-group-ids", []),
        "UserData": Path(user_data.removeprefix("file://")).read_text(),
    }
    refuse_unknown(found)
    state["instances"].append(instance)
    save(state)
    return {"OwnerId": "123456789012", "ReservationId": "r-0standin", "Instances": [view(instance)]}


def view(instance: dict) -> dict:
    """What the API returns of an instance (not its user data, which has its own call)."""
    hidden = ("UserData", "VolumeTags", "SecurityGroupIds", "MetadataOptions")
    return {key: value for key, value in instance.items() if key not in hidden}


def matches(instance: dict, name: str, values: list[str]) -> bool:
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    if name.startswith("tag:"):
        return tags.get(name[4:]) in values
    if name == "tag-key":
        return any(value in tags for value in values)
    if name == "instance-state-name":
        return instance["State"]["Name"] in values
    if name == "instance-id":
        return instance["InstanceId"] in values
    fail(f"aws stand-in: filter {name!r} is not modelled", NOT_MODELLED)
    return False


def describe_instances(found: dict[str, list[str]], state: dict) -> dict:
    filters = []
    for text in found.pop("filters", []):
        match = re.fullmatch(r"Name=([^,]+),Values=(.+)", text)
        if not match:
            fail(f"Error parsing parameter '--filters': {text!r}", 252)
        filters.append((match[1], match[2].split(",")))
    refuse_unknown(found)
    listed = [i for i in state["instances"] if all(matches(i, n, v) for n, v in filters)]
    return {"Reservations": [{"Instances": [view(i)]} for i in listed]}


def by_id(state: dict, ids: list[str], operation: str) -> list[dict]:
    known = {i["InstanceId"]: i for i in state["instances"]}
    missing = [i for i in ids if i not in known]
    if not ids or missing:
        fail(
            f"An error occurred (InvalidInstanceID.NotFound) when calling the {operation} "
            f"operation: The instance IDs '{', '.join(missing)}' do not exist"
        )
    return [known[i] for i in ids]


def terminate_instances(found: dict[str, list[str]], state: dict) -> dict:
    instances = by_id(state, found.pop("instance-ids", []), "TerminateInstances")
    refuse_unknown(found)
    changes = []
    for instance in instances:
        previous = instance["State"]["Name"]
        if previous != "terminated":
            instance["State"] = {"Name": "shutting-down"}
        changes.append(
            {
                "InstanceId": instance["InstanceId"],
                "CurrentState": dict(instance["State"]),
                "PreviousState": {"Name": previous},
            }
        )
    save(state)
    return {"TerminatingInstances": changes}


def wait(waiter: str, found: dict[str, list[str]], state: dict) -> None:
    instances = by_id(state, found.pop("instance-ids", []), "DescribeInstances")
    refuse_unknown(found)
    becomes = {
        "instance-running": ("pending", "running"),
        "instance-terminated": ("shutting-down", "terminated"),
    }
    if waiter not in becomes:
        fail(f"aws stand-in: waiter {waiter!r} is not modelled", NOT_MODELLED)
    before, after = becomes[waiter]
    for instance in instances:
        if instance["State"]["Name"] in (before, after):
            instance["State"] = {"Name": after}
        else:
            fail(f"Waiter {waiter} failed: Waiter encountered a terminal failure state", 255)
    save(state)


def refuse_unknown(found: dict[str, list[str]]) -> None:
    if found:
        fail(f"aws stand-in: options {sorted(found)} are not modelled", NOT_MODELLED)


def main(args: list[str]) -> None:
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        fail(
            "Unable to locate credentials. "
            'You can configure credentials by running "aws configure".',
            253,
        )
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        fail(
            "You must specify a region. "
            'You can also configure your region by running "aws configure".',
            253,
        )
    if args[:1] != ["ec2"] or len(args) < 2:
        fail(f"aws stand-in: {' '.join(args[:2])} is not modelled", NOT_MODELLED)
    command, rest = args[1], args[2:]
    waiter = rest.pop(0) if command == "wait" and rest else None
    found = options(rest)
    if found.pop("output", ["json"]) != ["json"]:
        fail("aws stand-in: only --output json is modelled", NOT_MODELLED)
    state = load()
    calls = {
        "run-instances": run_instances,
        "describe-instances": describe_instances,
        "terminate-instances": terminate_instances,
    }
    if command == "wait":
        wait(waiter, found, state)
    elif command in calls:
        print(json.dumps(calls[command](found, state), indent=4))
    else:
        fail(f"aws stand-in: ec2 {command} is not modelled", NOT_MODELLED)


if __name__ == "__main__":
    main(sys.argv[1:])
