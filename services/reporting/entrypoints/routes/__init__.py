"""The reporting API, one router per resource."""
