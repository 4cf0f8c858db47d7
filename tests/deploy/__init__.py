"""Unit tests of bindery/deploy (no stack: fake runtime, fake HTTP transport, throwaway git repos)."""
