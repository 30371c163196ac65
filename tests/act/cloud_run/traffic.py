"""Traffic of the stand-in Cloud Run service, edited as gcloud edits a service's spec.traffic
(Google Cloud CLI 578.0.0: lib/googlecloudsdk/api_lib/run/traffic.py, TrafficTargets, and
command_lib/run/config_changes.py). A target is `{"revisionName" | "latestRevision", "percent",
"tag"}`; gcloud's key for the latest ready revision is LATEST."""

LATEST = "LATEST"


class GcloudError(Exception):
    """What gcloud prints after `ERROR: (gcloud.<command>) `."""


def url(port: int) -> str:
    """The stand-in's URLs are loopback ports: there is no DNS for run.app here."""
    return f"http://127.0.0.1:{port}"


def key_of(target: dict) -> str:
    return LATEST if target.get("latestRevision") else target["revisionName"]


def target_for(key: str, percent: int = 0, tag: str = "") -> dict:
    target = {"latestRevision": True} if key == LATEST else {"revisionName": key}
    if percent:
        target["percent"] = percent
    if tag:
        target["tag"] = tag
    return target


def normalized(traffic: list[dict]) -> tuple[dict[str, int], list[dict]]:
    """(key -> percent for targets with a share, tag targets at 0%), as gcloud normalizes them."""
    shares: dict[str, int] = {}
    tags = []
    for target in traffic:
        if target.get("tag"):
            tags.append(target_for(key_of(target), tag=target["tag"]))
        if target.get("percent"):
            shares[key_of(target)] = shares.get(key_of(target), 0) + target["percent"]
    return shares, tags


def ordered(shares: dict[str, int], tags: list[dict]) -> list[dict]:
    """Revisions by name, LATEST last, then the tags (gcloud's SortKeyFromKey)."""
    keys = sorted(shares, key=lambda key: (key == LATEST, key))
    return [target_for(key, shares[key]) for key in keys] + tags


def zero_latest(traffic: list[dict], latest_ready: str) -> list[dict]:
    shares, tags = normalized(traffic)
    if LATEST not in shares:
        return traffic
    shares[latest_ready] = shares.get(latest_ready, 0) + shares.pop(LATEST)
    return ordered(shares, tags)


def update_tags(traffic: list[dict], update: dict[str, str], remove: list[str]) -> list[dict]:
    kept = []
    for target in traffic or [target_for(LATEST, 100)]:
        target = dict(target)
        if target.get("tag") in update or target.get("tag") in remove:
            target.pop("tag")
        if target.get("percent") or target.get("tag"):
            kept.append(target)
    return kept + [target_for(key, tag=tag) for tag, key in sorted(update.items())]


def update_percentages(traffic: list[dict], new: dict[str, int]) -> list[dict]:
    shares, tags = normalized(traffic)
    if sum(shares.values()) != 100:
        raise GcloudError(
            f"Current traffic allocation of {sum(shares.values())} is not 100 percent"
        )
    specified = sum(new.values())
    others = {key: percent for key, percent in shares.items() if key not in new}
    if specified > 100:
        raise GcloudError("Over 100% of traffic is specified.")
    if not others and specified < 100:
        raise GcloudError(
            "Every target with traffic is updated but 100% of traffic has not been specified."
        )
    rest = 100 - specified
    scaled = {key: percent * rest / sum(others.values()) for key, percent in others.items()}
    result = {**{key: int(value) for key, value in scaled.items()}, **new}
    # Whole percentages: the largest losses from rounding down get the missing points.
    missing = 100 - sum(result.values())
    for key in sorted(scaled, key=lambda k: (int(scaled[k]) - scaled[k], scaled[k], k))[:missing]:
        result[key] += 1
    return ordered({key: percent for key, percent in result.items() if percent}, tags)


def resolved(service: dict) -> list[dict]:
    """status.traffic: spec.traffic with LATEST named, and each tag's URL."""
    status = []
    for target in service["traffic"]:
        entry = {**target, "revisionName": target.get("revisionName") or service["latestReady"]}
        if target.get("tag"):
            entry["url"] = url(service["tagPorts"][target["tag"]])
        status.append(entry)
    return status


def reached(service: dict) -> set[str]:
    return {
        target["revisionName"]
        for target in resolved(service)
        if target.get("percent") or target.get("tag")
    }
