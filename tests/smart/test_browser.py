"""A real headless Chromium (Debian's ``chromium`` + ``chromedriver``, driven by Selenium) signs in and
consents as a person would -- with the keyboard only -- and lands on the redirect URI with a code.

Skipped where Chromium is not installed, except on CI (``CI`` set), where its absence is a failure:
.ci/run installs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.smart.live import LIVE_REDIRECT_PATH, live
from tests.smart.support import pkce, query_of

__all__ = ["live"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "CI must install chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _person(driver: Any, url: str, redirect: str) -> str:
    """Sign in and allow using only the keyboard; returns the URL the browser ends on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    driver.get(url)
    wait.until(ec.presence_of_element_located((By.ID, "username")))
    assert driver.title == "Sign in"
    active = driver.switch_to.active_element
    assert active.get_attribute("id") == "username", "the username field has focus on load"
    active.send_keys("alice@example.org")
    active.send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys("demo-pass-2026", Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, 'button[name="decision"][value="allow"]')))
    assert "Lab results" in driver.page_source or "lab results" in driver.page_source
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(30):
        focused = driver.switch_to.active_element
        if focused.get_attribute("name") == "decision" and focused.get_attribute("value") == "allow":
            break
        focused.send_keys(Keys.TAB)
    else:
        raise AssertionError("the Allow button is not reachable with Tab")
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(lambda d: d.current_url.startswith(redirect))
    return str(driver.current_url)


async def test_chromium_signs_in_and_consents_with_the_keyboard(live: tuple[str, dict[str, str]], browser: Any) -> None:
    base, _ = live
    redirect = base + LIVE_REDIRECT_PATH
    _, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": "app-live",
        "redirect_uri": redirect,
        "scope": "launch/patient openid fhirUser patient/Observation.rs",
        "state": "chromium-state-1",
        "aud": base + "/fhir",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    landed = await asyncio.to_thread(_person, browser, f"{base}/oauth/authorize?{urlencode(params)}", redirect)
    query = query_of(landed)
    assert query["state"] == "chromium-state-1"
    assert len(query["code"]) >= 40
