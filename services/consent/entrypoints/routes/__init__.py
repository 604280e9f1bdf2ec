"""The consent API's routers, one per resource; ``entrypoints.api`` assembles them."""
