from __future__ import annotations

import pytest

from tests.charts.helm import Chart


@pytest.fixture(scope="session")
def chart(helm, tmp_path_factory) -> Chart:
    return Chart(helm, tmp_path_factory.mktemp("charts"))
