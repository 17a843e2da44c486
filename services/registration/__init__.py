"""Registration service: the unit tree, volunteers, teams, residents, accounts and tokens."""
