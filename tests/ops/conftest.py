from __future__ import annotations

import pytest

from tests.support import tools


@pytest.fixture(scope="session")
def promtool(tool):
    """promtool(*args, cwd=...) -> the finished process (Debian's prometheus package, see stack.sh)."""
    binary = tool("promtool")
    return lambda *args, **kwargs: tools.run(binary, *args, **kwargs)
