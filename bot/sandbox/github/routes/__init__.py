"""REST routes of the GitHub sandbox, one module per area of the API."""
