"""The ordering service: menu, orders through 点单 → 报单 → 派单 → 接单 → 评单, and activities."""
