from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.aio.client import Client as NATS

from agora_events.envelope import (
    Envelope,
    EnvelopeError,
    decode_header_value,
    encode_header_value,
)

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def envelope(**changes: object) -> Envelope:
    fields: dict[str, object] = {
        "id": "5b1c0f0e-1111-4222-8333-944455556666",
        "source": "/agora/registration",
        "type": "agora.registration.participant.registered.v1",
        "time": datetime(2025, 6, 23, 9, 30, tzinfo=UTC),
        "data": b'{"delegation": "CIV"}',
        "subject": "p-123",
        "dataschema": "https://schemas.agora.example/events/x.json",
        "actor": "organiser:Côte d'Ivoire desk",
        "correlationid": "corr-1",
        "causationid": "cmd-1",
        "aggregateversion": 3,
        "idempotencykey": "key-1",
        "traceparent": TRACEPARENT,
    }
    fields.update(changes)
    return Envelope(**fields)  # type: ignore[arg-type]


def test_round_trips_every_attribute_through_headers() -> None:
    original = envelope()
    assert Envelope.from_headers(original.to_headers(), original.data) == original


def test_uses_the_cloudevents_binary_mode_header_names() -> None:
    headers = envelope().to_headers()
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == "agora.registration.participant.registered.v1"
    assert headers["content-type"] == "application/json"
    assert headers["traceparent"] == TRACEPARENT
    assert headers["ce-aggregateversion"] == "3"


def test_sends_datacontenttype_as_ce_datacontenttype_and_content_type() -> None:
    # NATS binding 3.1.3.1: `datacontenttype` maps to `ce-datacontenttype`; content-type
    # goes along for readers that look there (and says binary mode to those of the binding).
    headers = envelope(datacontenttype="application/json; charset=utf-8").to_headers()
    assert headers["ce-datacontenttype"] == "application/json;%20charset=utf-8"
    assert headers["content-type"] == headers["ce-datacontenttype"]


def test_reads_datacontenttype_from_ce_datacontenttype_first_then_content_type() -> None:
    headers = envelope().to_headers()
    only_attribute = {k: v for k, v in headers.items() if k != "content-type"}
    only_attribute["ce-datacontenttype"] = "application/xml"
    read = Envelope.from_headers(only_attribute, b"<x/>")
    assert read.datacontenttype == "application/xml"
    assert "datacontenttype" not in read.extensions
    as_stored_before = {k: v for k, v in headers.items() if k != "ce-datacontenttype"}
    as_stored_before["Content-Type"] = as_stored_before.pop("content-type")
    assert Envelope.from_headers(as_stored_before, b"{}").datacontenttype == "application/json"
    neither = {k: v for k, v in as_stored_before.items() if k != "Content-Type"}
    assert Envelope.from_headers(neither, b"{}").datacontenttype == "application/json"


def test_refuses_a_structured_mode_message() -> None:
    headers = envelope().to_headers() | {"content-type": "application/cloudevents+json"}
    with pytest.raises(EnvelopeError, match="structured-mode"):
        Envelope.from_headers(headers, b"{}")


@pytest.mark.parametrize(
    "value",
    ["Türkiye", "Côte d'Ivoire", "São Tomé and Príncipe", "100%", 'say "hi"', "a b", "日本"],
)
def test_percent_encodes_values_outside_printable_ascii(value: str) -> None:
    encoded = encode_header_value(value)
    assert all(0x21 <= ord(c) <= 0x7E for c in encoded)
    assert decode_header_value(encoded) == value


def test_a_newline_cannot_inject_a_header() -> None:
    headers = envelope(actor="evil\r\nNats-Msg-Id: forged").to_headers()
    assert "\n" not in headers["ce-actor"] and "\r" not in headers["ce-actor"]
    decoded = Envelope.from_headers(headers, b"{}")
    assert decoded.actor == "evil\r\nNats-Msg-Id: forged"


@given(st.text())
def test_any_text_survives_the_header_codec(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates are not text a person can send
    assert decode_header_value(encode_header_value(value)) == value


def test_time_keeps_its_instant_in_any_offset() -> None:
    tashkent = timezone(timedelta(hours=5))
    moment = datetime(2025, 6, 23, 14, 0, tzinfo=tashkent)
    decoded = Envelope.from_headers(envelope(time=moment).to_headers(), b"{}")
    assert decoded.time == moment
    assert decoded.time.tzinfo is not None


def test_refuses_a_naive_time() -> None:
    with pytest.raises(EnvelopeError, match="timezone-aware"):
        envelope(time=datetime(2025, 6, 23, 9, 30)).to_headers()


def test_reports_missing_required_attributes() -> None:
    headers = envelope().to_headers()
    del headers["ce-source"]
    with pytest.raises(EnvelopeError, match="source"):
        Envelope.from_headers(headers, b"{}")


def test_refuses_another_spec_version() -> None:
    headers = envelope().to_headers() | {"ce-specversion": "0.3"}
    with pytest.raises(EnvelopeError, match="specversion"):
        Envelope.from_headers(headers, b"{}")


def test_refuses_invalid_percent_encoding() -> None:
    headers = envelope().to_headers() | {"ce-actor": "%FF%FE"}
    with pytest.raises(EnvelopeError, match="UTF-8"):
        Envelope.from_headers(headers, b"{}")


def test_keeps_unknown_extensions() -> None:
    original = envelope(extensions={"partition": "eu"})
    assert Envelope.from_headers(original.to_headers(), b"{}").extensions == {"partition": "eu"}


def test_refuses_extension_names_cloudevents_forbids() -> None:
    with pytest.raises(EnvelopeError, match="extension name"):
        envelope(extensions={"Bad-Name": "x"})


async def test_survives_a_real_nats_round_trip(nats_client: NATS) -> None:
    original = envelope(actor="délégation de Türkiye", data='{"name": "Türkiye"}'.encode())
    subscription = await nats_client.subscribe("test.envelope")
    await nats_client.publish("test.envelope", original.data, headers=original.to_headers())
    message = await subscription.next_msg(timeout=2)
    assert Envelope.from_headers(message.headers, message.data) == original
