"""MLLP framing as a pure state machine (catalog D04/D05), fed bytes the way sockets deliver them."""

from __future__ import annotations

from gateway.hl7v2.framing import END, START, Frame, Framer, Garbage, Oversize

MSG = b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||X^^^^MR"


def frames(events: list[object]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Frame)]


def test_two_messages_in_one_write_stay_two() -> None:
    events = Framer(1024).feed(START + MSG + END + START + MSG + b"2" + END)
    assert frames(events) == [MSG, MSG + b"2"]


def test_one_byte_writes_make_one_frame() -> None:
    framer = Framer(1024)
    data = START + MSG + END
    events = [e for i in range(len(data)) for e in framer.feed(data[i : i + 1])]
    assert frames(events) == [MSG]
    assert framer.pending == 0


def test_garbage_before_a_frame_is_counted_and_dropped() -> None:
    events = Framer(1024).feed(b"hello" + START + MSG + END + b"\r\n")
    assert frames(events) == [MSG]
    assert [e.size for e in events if isinstance(e, Garbage)] == [5, 2]


def test_unterminated_frame_then_new_start_is_never_merged() -> None:
    events = Framer(1024).feed(START + b"MSH|partial" + START + MSG + END)
    assert frames(events) == [MSG]
    assert any(isinstance(e, Garbage) for e in events)


def test_lone_0x1c_does_not_end_a_frame() -> None:
    events = Framer(1024).feed(START + MSG + b"\x1cX" + END)
    assert frames(events) == [MSG + b"\x1cX"]


def test_oversize_frame_is_reported_with_its_size_not_buffered() -> None:
    framer = Framer(100)
    big = b"MSH|" + b"x" * 1000
    events = []
    for i in range(0, len(big), 64):
        events += framer.feed((START if i == 0 else b"") + big[i : i + 64])
        assert framer.buffered <= 100 + 64
    events += framer.feed(END + START + MSG + END)
    over = [e for e in events if isinstance(e, Oversize)]
    assert len(over) == 1 and over[0].size == len(big) and over[0].head.startswith(b"MSH|")
    assert frames(events) == [MSG]


def test_frame_at_exactly_the_limit_is_accepted() -> None:
    payload = b"M" * 100
    assert frames(Framer(100).feed(START + payload + END)) == [payload]


def test_oversize_frame_arriving_in_one_read_is_still_oversize() -> None:
    events = Framer(10).feed(START + b"M" * 11 + END + START + b"OK" + END)
    assert [type(e).__name__ for e in events] == ["Oversize", "Frame"]
