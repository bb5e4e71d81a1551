"""The package version and the array API standard version it implements."""
__version__ = "0.1.0"
__array_api_version__ = "2024.12"
