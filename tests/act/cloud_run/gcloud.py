"""A stand-in for the slice of Google Cloud Run that the cloud-run deploy action drives, and for
the gcloud commands it calls (tests/act/bin/gcloud hands its arguments over): `gcloud run deploy`,
`gcloud run services describe|update-traffic`, `gcloud auth print-identity-token|configure-docker`.
It never talks to Google, and it is not gcloud: what it answers was read in the Google Cloud CLI's
source (578.0.0, github.com/google-cloud-sdk-unofficial/google-cloud-sdk, lib/googlecloudsdk/...)
and seen from gcloud 528.0.0 itself against loopback stand-ins of Google's APIs.

The state is a folder ($STUB_CLOUD_RUN, default $STUB_RECORD/cloud-run), one JSON file a service
(`<region>/<service>.json`): its revisions (image, port, ready), its traffic as gcloud writes it
(spec.traffic: `{"revisionName"|"latestRevision", "percent", "tag"}`), its custom audiences, the
ports of its URLs, and the processes that serve them.

What it models, and where from:
- `run deploy` makes a revision `<service>-<generation:05d>-<3 letters>` of an Artifact Registry
  image whose digest the registry stand-in holds, starts it and waits until it listens (Cloud
  Run's default startup probe is TCP on the port). A new service routes LATEST=100; on an existing
  one the traffic is left as it is, except that --no-traffic first moves LATEST's share to the
  revision LATEST named (config_changes.NoTrafficChange, traffic.ZeroLatestTraffic) and is refused
  on a service that does not exist yet, and --tag names the new revision
  (config_changes.TagOnDeployChange). --add-custom-audiences adds to the service's list. The
  revision's env is the service template's (the latest revision's) with --remove-env-vars taken
  out, then --update-env-vars set (config_changes.EnvVarLiteralChanges: a deploy changes only
  what it is told, so a variable stays from one revision to the next), and it reaches the server
  the revision runs.
- `run services update-traffic`: tags first (--update-tags, --remove-tags), then percentages
  (--to-latest, --to-revisions, --to-tags resolved through the tags): targets not named keep the
  rest in proportion to what they had, 0 drops a target, more than 100 or less than 100 with no
  other target is refused (config_changes.TrafficChanges, traffic.TrafficTargets.UpdateTraffic).
- Instances: a revision some URL reaches (a share of the traffic, or a tag) runs the project's own
  server with its image's model (tests/act/serve-image, from a copy of src/ and the Dockerfile
  made at deploy, as an image holds its code); one no URL reaches is scaled to zero.
- URLs are http://127.0.0.1:<port> (there is no DNS for run.app here): one port a service and one a
  tag, kept as Cloud Run keeps a tag's URL. A front process on each routes a request as Cloud Run
  would (the service URL by the traffic shares, a tag URL to its revision, 404 for a tag no longer
  there) after checking its ID token: the audience is the service URL or one of its custom
  audiences, which Cloud Run applies to all serving revisions
  (https://cloud.google.com/run/docs/configuring/custom-audiences), and it has not expired;
  otherwise 401.
- Credentials are those google-github-actions/auth leaves (its stand-in writes them):
  CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE and CLOUDSDK_CORE_PROJECT; without them gcloud's own
  errors. `auth print-identity-token --audiences` is refused for those external-account
  credentials unless a service account is impersonated, as gcloud refuses it.

`python instances.py stop STATE` ends every process the stand-in started (the tests call it when
they are done).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from instances import free_port, instance, listening, load, reconcile, save, start, stop
from traffic import (
    LATEST,
    GcloudError,
    key_of,
    resolved,
    target_for,
    update_percentages,
    update_tags,
    url,
    zero_latest,
)

REGISTRY_HOST = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev/")  # Artifact Registry
TOKEN_LIFETIME = 3600  # seconds, as gcloud's own comments say of ID tokens (run/services/proxy.py)


def state_dir() -> Path:
    return Path(os.environ.get("STUB_CLOUD_RUN") or Path(os.environ["STUB_RECORD"]) / "cloud-run")


def service_file(region: str, name: str) -> Path:
    return state_dir() / region / f"{name}.json"


def options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments, and `--name=value` / `--flag` options (gcloud's long forms)."""
    positional, named = [], {}
    for arg in args:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            named[key] = value
        else:
            positional.append(arg)
    return positional, named


def pairs(value: str) -> dict[str, int]:
    """`a=10,b=90` as gcloud's ArgDict of percentages."""
    return {
        key: int(number) for key, _, number in (item.partition("=") for item in value.split(","))
    }


def needs_credentials(named: dict[str, str]) -> str:
    """The project, as gcloud finds it with the auth action's exports; gcloud's errors else."""
    credentials = os.environ.get("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "")
    if not Path(credentials).is_file():
        raise GcloudError("You do not currently have an active account selected.")
    project = named.get("project") or os.environ.get("CLOUDSDK_CORE_PROJECT", "")
    if not project:
        raise GcloudError(
            "The [project] resource is not properly specified. Please specify the argument "
            "[--project] on the command line or set the property [core/project]."
        )
    return project


def located(positional: list[str], named: dict[str, str]) -> tuple[Path, str, str]:
    if "region" not in named:
        raise GcloudError("the stand-in needs --region (gcloud would prompt for it)")
    return service_file(named["region"], positional[0]), positional[0], named["region"]


def deploy(positional: list[str], named: dict[str, str]) -> None:
    project = needs_credentials(named)
    path, name, region = located(positional, named)
    image = named.get("image", "")
    service = load(path)
    if "no-traffic" in named and service is None:
        raise GcloudError("--no-traffic not supported when creating a new service.")
    digest = re.search(r"@sha256:([0-9a-f]{64})$", image)
    registry = Path(os.environ.get("STUB_REGISTRY") or Path(os.environ["STUB_RECORD"]) / "registry")
    if not (REGISTRY_HOST.match(image) and digest):
        raise GcloudError(f"the stand-in deploys Artifact Registry images by digest, not '{image}'")
    if not (registry / digest[1] / "model.onnx").is_file():
        raise GcloudError(f"Image '{image}' not found.")
    print(f"Deploying container to Cloud Run service [{name}] in project [{project}] region "
          f"[{region}]", file=sys.stderr)  # fmt: skip
    if service is None:
        service = {
            "name": name, "region": region, "project": project, "port": free_port(),
            "generation": 0, "customAudiences": [], "revisions": {}, "tagPorts": {},
            "traffic": [target_for(LATEST, 100)], "latestReady": None,
        }  # fmt: skip
    service["generation"] += 1
    letters = hashlib.sha256(f"{name}{service['generation']}{image}".encode()).hexdigest()
    revision = f"{name}-{service['generation']:05d}-" + "".join(
        chr(ord("a") + int(letters[i : i + 2], 16) % 26) for i in (0, 2, 4)
    )
    folder = path.parent / name / revision
    shutil.copytree("src", folder / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy("Dockerfile", folder / "Dockerfile")  # serve-image reads MODEL_NAME from its ENV
    env = dict(list(service["revisions"].values())[-1]["env"]) if service["revisions"] else {}
    for key in filter(None, named.get("remove-env-vars", "").split(",")):
        env.pop(key, None)
    for item in filter(None, named.get("update-env-vars", "").split(",")):
        key, _, value = item.partition("=")
        env[key] = value
    service["revisions"][revision] = {
        "image": image, "port": free_port(), "ready": False, "env": env,
    }  # fmt: skip
    entry = service["revisions"][revision]
    entry["pid"] = start(instance(entry), path.parent / name / f"{revision}.log", cwd=folder)
    if not listening(entry["port"], entry["pid"], 60):
        stop(entry.pop("pid"))
        save(path, service)
        raise GcloudError(
            f"Revision '{revision}' is not ready and cannot serve traffic. The user-provided "
            "container failed to start and listen on the port defined provided by the PORT=8080 "
            f"environment variable within the allocated timeout. Logs: {folder}.log"
        )
    entry["ready"] = True
    if "no-traffic" in named:
        service["traffic"] = zero_latest(service["traffic"], service["latestReady"])
    service["latestReady"] = revision
    if named.get("tag"):
        service["tagPorts"].setdefault(named["tag"], free_port())
        service["traffic"] = update_tags(service["traffic"], {named["tag"]: revision}, [])
    for audience in filter(None, named.get("add-custom-audiences", "").split(",")):
        if audience not in service["customAudiences"]:
            service["customAudiences"].append(audience)
    reconcile(path, service)
    percent = sum(t.get("percent", 0) for t in resolved(service) if t["revisionName"] == revision)
    lines = [
        f"Service [{name}] revision [{revision}] has been deployed and is serving "
        f"{0 if 'no-traffic' in named else percent} percent of traffic."
    ]
    if percent:
        lines.append(f"Service URL: {url(service['port'])}")
    if named.get("tag"):
        lines.append(
            f"The revision can be reached directly at {url(service['tagPorts'][named['tag']])}"
        )
    print("\n".join(lines), file=sys.stderr)


def described(service: dict) -> dict:
    """`gcloud run services describe --format=json`: the serving.knative.dev/v1 Service."""
    latest = list(service["revisions"].values())[-1]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": service["name"],
            "namespace": service["project"],
            "generation": service["generation"],
            "annotations": {
                "run.googleapis.com/custom-audiences": json.dumps(service["customAudiences"])
            },
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "image": latest["image"],
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": k, "value": v} for k, v in latest["env"].items()],
                        }
                    ]
                }
            },
            "traffic": service["traffic"],
        },
        "status": {
            "url": url(service["port"]),
            "latestReadyRevisionName": service["latestReady"],
            "latestCreatedRevisionName": list(service["revisions"])[-1],
            "traffic": resolved(service),
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def existing(positional: list[str], named: dict[str, str]) -> tuple[Path, dict]:
    """The service the command names, as gcloud finds it (or does not)."""
    needs_credentials(named)
    path, name, _ = located(positional, named)
    service = load(path)
    if service is None:
        raise GcloudError(f"Cannot find service [{name}]")
    return path, service


def describe(positional: list[str], named: dict[str, str]) -> None:
    _, service = existing(positional, named)
    formats = {
        "json": lambda: json.dumps(described(service), indent=2),
        "value(status.url)": lambda: url(service["port"]),
    }
    if named.get("format") not in formats:
        raise GcloudError(f"the stand-in answers --format={' or --format='.join(formats)} only")
    print(formats[named["format"]]())


def update_traffic(positional: list[str], named: dict[str, str]) -> None:
    path, service = existing(positional, named)
    name = service["name"]
    kinds = [flag for flag in ("to-latest", "to-revisions", "to-tags") if flag in named]
    if len(kinds) > 1:
        raise GcloudError(
            f"argument --{kinds[0]}: At most one of --{' | --'.join(kinds)} can be specified."
        )
    update = {
        tag: key
        for tag, _, key in (
            item.partition("=") for item in named.get("update-tags", "").split(",") if item
        )
    }
    remove = [tag for tag in named.get("remove-tags", "").split(",") if tag]
    if not (kinds or update or remove):
        raise GcloudError("No traffic configuration change requested.")
    traffic = service["traffic"]
    if update or remove:
        for tag in update:
            service["tagPorts"].setdefault(tag, free_port())
        traffic = update_tags(traffic, update, remove)
    if "to-latest" in named:
        traffic = update_percentages(traffic, {LATEST: 100})
    elif "to-revisions" in named:
        new = pairs(named["to-revisions"])
        unknown = [key for key in new if key != LATEST and key not in service["revisions"]]
        if unknown:
            raise GcloudError(f"Revision [{unknown[0]}] does not exist.")
        traffic = update_percentages(traffic, new)
    elif "to-tags" in named:
        tagged = {target["tag"]: key_of(target) for target in traffic if target.get("tag")}
        new = {}
        for tag, percent in pairs(named["to-tags"]).items():
            if tag not in tagged:
                raise GcloudError(
                    f"There is no revision tagged with [{tag}] in the traffic allocation for "
                    f"[{name}]."
                )
            new[tagged[tag]] = percent
        traffic = update_percentages(traffic, new)
    service["traffic"] = traffic
    reconcile(path, service)
    lines = [f"URL: {url(service['port'])}", "Traffic:"]
    for target in resolved(service):
        if target.get("percent"):
            lines.append(f"  {target['percent']}% {target['revisionName']}")
        if target.get("tag"):
            lines.append(f"        {target['tag']}: {target['url']}")
    print("\n".join(lines))


def print_identity_token(positional: list[str], named: dict[str, str]) -> None:
    credentials = os.environ.get("CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "")
    if not Path(credentials).is_file():
        raise GcloudError("You do not currently have an active account selected.")
    kind = json.loads(Path(credentials).read_text()).get("type")
    account = named.get("impersonate-service-account", "")
    if "audiences" in named and not account and kind == "external_account":
        raise GcloudError("Invalid account type for `--audiences`. Requires valid service account.")
    if "include-email" in named and not account:
        raise GcloudError(
            "Invalid account type for `--include-email`. Requires an impersonate service account."
        )
    if account:
        print(
            "WARNING: This command is using service account impersonation. All API calls will be "
            f"executed as [{account}].",
            file=sys.stderr,
        )
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com", "aud": named.get("audiences") or "gcloud-client",
        "sub": hashlib.sha256(account.encode()).hexdigest()[:21], "iat": now,
        "exp": now + TOKEN_LIFETIME, **({"email": account} if "include-email" in named else {}),
    }  # fmt: skip
    print(".".join(encoded(part) for part in ({"alg": "none", "typ": "JWT"}, claims)) + ".stand-in")


def encoded(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def configure_docker(positional: list[str], named: dict[str, str]) -> None:
    print(f"Adding credentials for: {positional[0]}", file=sys.stderr)


EVERYWHERE = {"project", "quiet"}
# The commands modelled, with the flags each accepts here: a subset of gcloud's own (each one
# the workflows use was parsed by gcloud 528.0.0); any other flag is refused as gcloud refuses it.
COMMANDS = {
    ("run", "deploy"): (deploy, {
        "image", "no-traffic", "tag", "port", "cpu", "memory", "add-custom-audiences", "region",
    "update-env-vars", "remove-env-vars",
    }),
    ("run", "services", "describe"): (describe, {"format", "region"}),
    ("run", "services", "update-traffic"): (update_traffic, {
        "to-latest", "to-revisions", "to-tags", "remove-tags", "update-tags", "region",
    }),
    ("auth", "print-identity-token"): (print_identity_token, {
        "impersonate-service-account", "audiences", "include-email",
    }),
    ("auth", "configure-docker"): (configure_docker, set()),
}  # fmt: skip


def gcloud(args: list[str]) -> int:
    positional, named = options(args)
    path = next((path for path in COMMANDS if tuple(positional[: len(path)]) == path), None)
    if path is None:
        print(f"gcloud stand-in: `gcloud {' '.join(args)}` is not modelled", file=sys.stderr)
        return 2
    command, accepted = COMMANDS[path]
    what = ".".join(path)
    unknown = sorted(set(named) - accepted - EVERYWHERE)
    if unknown:
        print(f"ERROR: (gcloud.{what}) unrecognized arguments: --{unknown[0]}", file=sys.stderr)
        return 2
    try:
        command(positional[len(path) :], named)
    except GcloudError as err:
        print(f"ERROR: (gcloud.{what}) {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(gcloud(sys.argv[1:]))
