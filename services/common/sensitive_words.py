"""Sensitive-word matching (敏感词): the built-in list and the matcher every service screens
public text with. Media keeps each district's own list and mode (media/screening.py); services
that cannot read that list screen with the built-in one.

Matching ignores width, case, spaces, punctuation and symbols, so "赌 博" and "赌*博" are caught
as "赌博".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

DEFAULT_WORDS = (
    "赌博", "博彩", "六合彩", "网络赌场", "代开发票", "办假证", "刷单返利", "高利贷", "裸贷", "套路贷",
    "非法集资", "传销", "色情", "裸聊", "毒品", "冰毒", "海洛因", "大麻", "枪支弹药", "邪教", "法轮功",
)


def normalize(text: str) -> str:
    """NFKC, case-folded, without whitespace, punctuation, symbols or invisible characters."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "ZPSC")


def find(words: Iterable[str], text: str) -> list[str]:
    """The words of `words` that occur in `text`, in list order."""
    haystack = normalize(text)
    return [w for w in words if normalize(w) and normalize(w) in haystack]
