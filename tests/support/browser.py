"""Headless Chromium (Debian's chromium + chromium-driver) for the watch page's tests."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
DRIVER = "chromedriver"

# What the page reports about its video: decoded frames (the browser's own count), size.
VIDEO_STATE = """
const v = document.getElementById('video');
const q = v.getVideoPlaybackQuality();
return {frames: q.totalVideoFrames, width: v.videoWidth, height: v.videoHeight,
        status: document.getElementById('status').textContent};
"""
# The picture the video element shows now, as a PNG data URL (same origin: not tainted).
VIDEO_PICTURE = """
const v = document.getElementById('video');
if (!v.videoWidth) return null;
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
c.getContext('2d').drawImage(v, 0, 0);
return c.toDataURL('image/png');
"""


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    driver_path = shutil.which(DRIVER)
    if driver_path is None:
        raise RuntimeError("chromedriver is missing: run 'make setup' (Debian chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # runs as root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=800,700",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def video_state(driver: webdriver.Chrome) -> dict:
    return driver.execute_script(VIDEO_STATE)


def video_picture(driver: webdriver.Chrome) -> np.ndarray | None:
    url = driver.execute_script(VIDEO_PICTURE)
    if not url:
        return None
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
