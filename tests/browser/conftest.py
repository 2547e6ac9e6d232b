"""Browser fixtures: Debian's chromium through Playwright (never a downloaded browser).

``chromium_browser`` is session-scoped. When pytest-playwright is loaded it reuses that plugin's
``playwright`` instance (two sync Playwright instances cannot run in one thread), otherwise it starts
its own. ``browser_type_launch_args`` is overridden too, so tests in this folder that use the plugin's
own ``page``/``browser`` fixtures get the same executable and flags.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from harness import CHROMIUM_ARGS, WidgetPage, widget_pages


def _chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("chromium not found on PATH (Debian package `chromium`); browser tests need it", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {"executable_path": _chromium_path(), "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def chromium_browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    executable = _chromium_path()
    own = None
    if request.config.pluginmanager.hasplugin("playwright"):
        playwright = request.getfixturevalue("playwright")
    else:
        from playwright.sync_api import sync_playwright

        own = sync_playwright().start()
        playwright = own
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
        if own is not None:
            own.stop()


@pytest.fixture(scope="session")
def _harness_pages(chromium_browser: Any) -> Iterator[Callable[[], WidgetPage]]:
    with widget_pages(chromium_browser) as fresh:
        yield fresh


@pytest.fixture
def wpage(_harness_pages: Callable[[], WidgetPage]) -> Iterator[WidgetPage]:
    """A freshly loaded harness page; fails the test on page errors or requests leaving the fake origin."""
    wp = _harness_pages()
    yield wp
    wp.assert_clean()
