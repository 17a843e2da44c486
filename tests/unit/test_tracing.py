"""W3C trace context: what the platform accepts, continues and writes."""

from services.common import tracing

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_continued_as_a_child_span():
    child = tracing.continue_from(VALID)
    assert child.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert child.span_id != "00f067aa0ba902b7" and len(child.span_id) == 16
    assert tracing.parse(child.header()) == child


def test_anything_else_starts_a_new_trace():
    for bad in (None, "", "garbage", VALID.upper().replace("00-", "01-", 1), "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", VALID + "-extra"):
        fresh = tracing.continue_from(bad)
        assert fresh.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736" and tracing.parse(fresh.header()) == fresh


def test_unsampled_flag_is_kept():
    assert not tracing.continue_from(VALID[:-2] + "00").sampled


def test_outgoing_header_and_kafka_records_carry_the_current_trace():
    assert tracing.outgoing_header() is None
    with tracing.active(tracing.continue_from(VALID)) as context:
        assert tracing.current_trace_id() == context.trace_id
        outgoing = tracing.parse(tracing.outgoing_header())
        assert outgoing.trace_id == context.trace_id and outgoing.span_id != context.span_id
    assert tracing.current() is None
    [(key, value)] = tracing.record_header("4bf92f3577b34da6a3ce929d0e0e4736")
    assert key == "traceparent" and tracing.parse(value.decode()).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.record_header("") == [] and tracing.record_header("01HZX") == []
