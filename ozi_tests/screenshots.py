"""Screenshots of the question page for the README (``docs/``), taken in the system's headless
Chromium from a running ``ozi serve`` (after ``make demo``):

    python -m ozi_tests.screenshots --token "$(ozi token new --name docs)" --out docs

The page test (ozi_tests/test_api.py) takes the same steps and asserts what they show; this
only keeps the pictures.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

QUESTIONS = {
    "page-analytic.png": "Who are the top 5 authors by casts?",
    "page-semantic.png": "What are people saying about Denver?",
}


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import expect, sync_playwright

    parser = argparse.ArgumentParser(prog="ozi-screenshots")
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("error: no system Chromium (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(args.url + "/")
        page.fill("#token", args.token)
        page.dispatch_event("#token", "change")
        expect(page.locator("rect.bar-casts").first).to_be_visible()
        for name, question in QUESTIONS.items():
            page.fill("#question", question)
            page.click("#go")
            expect(page.locator("#answer")).not_to_be_empty(timeout=60_000)
            expect(page.locator("#go")).to_be_enabled(timeout=60_000)
            page.screenshot(path=str(args.out / name), full_page=True)
            print(args.out / name)
        browser.close()


if __name__ == "__main__":
    main()
