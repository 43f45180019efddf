"""Tests for zeroconf advertisement (livesound.osc.discovery) on the real network stack."""

import logging
import os
import threading

import pytest
from osc_helpers import DEADLINE, free_tcp_port, free_udp_port
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from livesound.osc import discovery
from livesound.osc.discovery import OSC_TYPE, OSCQUERY_TYPE, advertise

# Advertised only (nothing listens on them): free ports all the same, so no
# browser on this machine takes them for an engine that runs.
OSC_PORT, HTTP_PORT = free_udp_port(), free_tcp_port()


@pytest.fixture
def browser_zeroconf():
    """A second, independent zeroconf instance: the client looking for us."""
    try:
        zc = Zeroconf(ip_version=IPVersion.V4Only)
    except OSError as exc:
        pytest.skip(f"zeroconf found no usable multicast interface: {exc}")
    yield zc
    zc.close()


def browse(zc, service_type, wanted, timeout=DEADLINE):
    """Browse ``service_type`` until ``wanted`` shows up; True if it did."""
    seen = threading.Event()

    def on_change(zeroconf, service_type, name, state_change):
        if name == wanted and state_change is ServiceStateChange.Added:
            seen.set()

    browser = ServiceBrowser(zc, service_type, handlers=[on_change])
    try:
        return seen.wait(timeout)
    finally:
        browser.cancel()


def test_osc_and_oscquery_are_found_by_browsing(browser_zeroconf):
    name = f"livesound test {os.getpid()}"
    ad = advertise(name, OSC_PORT, HTTP_PORT)
    try:
        assert ad.active
        osc, oscjson = ad.infos
        assert osc.name.startswith(name) and osc.name.endswith(f".{OSC_TYPE}")
        for info, port in ((osc, OSC_PORT), (oscjson, HTTP_PORT)):
            assert browse(browser_zeroconf, info.type, info.name), info.name
            found = browser_zeroconf.get_service_info(
                info.type, info.name, timeout=1000 * DEADLINE
            )
            assert found is not None and found.port == port
            assert found.parsed_addresses()  # a client can reach us
    finally:
        ad.close()
    assert not ad.active
    ad.close()  # a second close is harmless


def test_without_an_http_port_only_osc_is_advertised(browser_zeroconf):
    ad = advertise(f"livesound solo {os.getpid()}", OSC_PORT, None)
    try:
        assert [i.type for i in ad.infos] == [OSC_TYPE]
        (info,) = ad.infos
        found = browser_zeroconf.get_service_info(
            OSC_TYPE, info.name, timeout=1000 * DEADLINE
        )
        assert found is not None and found.port == OSC_PORT
        oscjson = info.name.replace(OSC_TYPE, OSCQUERY_TYPE)
        assert (
            browser_zeroconf.get_service_info(OSCQUERY_TYPE, oscjson, timeout=1000)
            is None
        )
    finally:
        ad.close()


def test_close_withdraws_the_service(browser_zeroconf):
    ad = advertise(f"livesound leaving {os.getpid()}", OSC_PORT, None)
    (info,) = ad.infos
    ad.close()
    # A fresh client, so no cached record can answer for the departed service.
    with Zeroconf(ip_version=IPVersion.V4Only) as zc:
        assert zc.get_service_info(OSC_TYPE, info.name, timeout=1500) is None


def test_no_multicast_is_a_warning_not_an_error(monkeypatch, caplog):
    def no_network(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(discovery, "Zeroconf", no_network)
    with caplog.at_level(logging.WARNING, logger="livesound.osc.discovery"):
        ad = advertise("livesound", OSC_PORT, HTTP_PORT)
    assert not ad.active and ad.infos == ()
    assert "No such device" in caplog.text
    ad.close()
