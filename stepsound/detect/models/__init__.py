"""Trained model weights shipped with stepsound (data only; see stepsound.detect.stepnet)."""
