"""Points service: hours and points ledgers, stars, the points store, leaderboards, unit
scorecards and service record certificates."""
