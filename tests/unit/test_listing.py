"""The kit's bucketed keyset scan (services/common/listing.py): pages in order after any cursor,
few buckets read when a page is near, growing windows over empty stretches, and keys whose free
text parts cannot run into each other."""

from __future__ import annotations

import random

from services.common.listing import MAX_WINDOW, key, scan


def _store(values: list[int], width: int) -> dict[int, list[dict]]:
    buckets: dict[int, list[dict]] = {}
    for value in values:
        buckets.setdefault(value // width, []).append({"v": value})
    return buckets


def _pages(store, buckets, size, descending=False, accept=lambda _: True, window=1):
    reads: list[int] = []

    def fetch(chunk):
        reads.append(len(chunk))
        return [entry for b in chunk for entry in store.get(b, ())]

    seen, after = [], None
    while True:
        page = scan(fetch, buckets, sort_key=lambda e: e["v"], size=size, after=after, bucket_of=lambda v: v // 10,
                    accept=accept, window=window, descending=descending)
        seen += [e["v"] for e in page.entries]
        if not page.more:
            return seen, reads
        after = page.entries[-1]["v"]


def test_pages_follow_the_sort_order_after_any_cursor():
    rng = random.Random(7)
    values = sorted(rng.sample(range(100_000), 700))
    store = _store(values, 10)
    buckets = list(range(0, 10_000))
    assert _pages(store, buckets, 20)[0] == values
    assert _pages(store, buckets[::-1], 20, descending=True)[0] == values[::-1]
    odd = [v for v in values if v % 2]
    assert _pages(store, buckets, 7, accept=lambda e: e["v"] % 2 == 1)[0] == odd


def test_a_page_reads_few_buckets_where_entries_are_dense_and_wide_windows_where_they_are_not():
    dense = _store(list(range(1000)), 10)  # ten entries per bucket
    page = scan(lambda chunk: [e for b in chunk for e in dense.get(b, ())], list(range(100)),
                sort_key=lambda e: e["v"], size=20, bucket_of=lambda v: v // 10)
    assert [e["v"] for e in page.entries] == list(range(20)) and page.more
    sparse = _store([5, 99_995], 10)  # two entries ten thousand buckets apart
    seen, reads = _pages(sparse, list(range(10_000)), 20)
    assert seen == [5, 99_995]
    assert len(reads) < 20 and max(reads) == MAX_WINDOW  # windows grew instead of one query per bucket


def test_keys_keep_their_parts_apart():
    assert key("d1", "unit_1", "王", 7) == "d1|unit_1|王|7"
    assert key("d", "a|b", "c") != key("d", "a", "b|c")
    assert key("d", "100%") != key("d", "100%25")
