"""The config flows, by part: the bus flow, the meter subentry flow, the options flow and each bus kind's steps.

``config_flow.py`` is only the entry point Home Assistant imports. Steps shared by
two flows are objects the flows hold and hand their steps to, not base classes.
"""
