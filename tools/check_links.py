"""Fetch every external link of the built docs site (and of the given Markdown files) once and
list the broken ones with the pages that hold them.

CI's docs job runs it after `make site` (`make links`); the template's tests have no internet, so
they check internal links and anchors offline (tests/test_docs.py) and this script against a
local server. Standard library only.
"""

import argparse
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

MARKDOWN_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")
# Worth asking again: rate limits and server errors pass; a 404 does not.
RETRY_STATUSES = {429, 500, 502, 503, 504}


class PageLinks(HTMLParser):
    """The hrefs of a page's links and the ids it defines (anchors that links may name)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def parse(page: Path) -> PageLinks:
    links = PageLinks()
    links.feed(page.read_text())
    return links


def collect(site: Path, markdown: list[Path]) -> dict[str, set[str]]:
    """url -> the pages (site-relative) or files that link to it."""
    found: dict[str, set[str]] = {}
    for page in sorted(site.rglob("*.html")):
        for url in parse(page).hrefs:
            if url.startswith(("http://", "https://")):
                found.setdefault(url, set()).add(str(page.relative_to(site)))
    for path in markdown:
        for url in MARKDOWN_LINK.findall(path.read_text()):
            found.setdefault(url, set()).add(str(path))
    return found


def problem(url: str, timeout: float) -> str | None:
    """None when the link answers; otherwise why not. HEAD first, GET when HEAD is refused."""
    last = "no answer"
    for method in ("HEAD", "GET", "GET"):
        request = urllib.request.Request(
            url, method=method, headers={"User-Agent": "cookiecutter-mlops-actions link check"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return None
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
            if error.code not in RETRY_STATUSES | {403, 405, 501}:
                return last
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            last = str(getattr(error, "reason", error))
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (build/site)")
    parser.add_argument("markdown", type=Path, nargs="*", help="Markdown files to check too")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    links = collect(args.site, args.markdown)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(
            zip(links, pool.map(lambda url: problem(url, args.timeout), links), strict=True)
        )
    broken = {url: why for url, why in results.items() if why}
    for url, why in sorted(broken.items()):
        print(f"broken: {url} ({why}), linked from {', '.join(sorted(links[url]))}")
    print(f"{len(links)} external links checked, {len(broken)} broken")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
