"""ui_bridge"""
