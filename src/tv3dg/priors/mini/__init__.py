"""priors/mini"""
