"""Tests of the widget channel, desk sign-in and the browser faces."""
