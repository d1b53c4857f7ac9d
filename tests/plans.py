"""Test helpers: convolution plans with an algorithm taken away, to compare the paths."""

from layerwise._layers import conv_plan


def without(plan, algorithm: str):
    """``plan`` with every pass that ``algorithm`` would compute given to im2col instead."""
    passes = ("forward", "dx", "dw", "dw_only")
    return plan._replace(**{name: "im2col" for name in passes if getattr(plan, name) == algorithm})


def plans_without(monkeypatch, algorithm: str) -> None:
    """Every convolution planned from now on (in this test) computes ``algorithm``'s passes by im2col."""
    real = conv_plan.plan_convolution
    monkeypatch.setattr(conv_plan, "plan_convolution", lambda *args, **kw: without(real(*args, **kw), algorithm))
