"""gaussians"""
