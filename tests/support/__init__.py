"""Helpers shared by the tests: servers, clients and processes. Test modules import
from here, never from each other."""
