"""Specification of :mod:`layerwise.gradient_check`: numeric gradients and the relative error."""

from __future__ import annotations

import numpy as np
import pytest

from layerwise.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, grad_check_sparse, rel_error


# --- rel_error ----------------------------------------------------------------------------------


def test_rel_error_is_the_max_elementwise_relative_error():
    x = np.array([1.0, 2.0, -3.0])
    y = np.array([1.1, 2.0, -3.0])
    assert rel_error(x, y) == pytest.approx(0.1 / 2.1, rel=1e-12)
    assert rel_error(x, x) == 0.0
    # Opposite signs: |x - y| / (|x| + |y|) = 1, the largest possible value.
    assert rel_error(np.array([2.0]), np.array([-2.0])) == pytest.approx(1.0)


def test_rel_error_floors_the_denominator_at_1e_8():
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-10 / 1e-8)
    assert rel_error(np.array([0.0, 5.0]), np.array([1e-12, 5.0])) == pytest.approx(1e-4)


def test_rel_error_matches_the_notebook_definition():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    notebook = np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))
    assert rel_error(x, y) == pytest.approx(notebook, rel=1e-15)
    assert isinstance(rel_error(x, y), float)


def test_rel_error_accepts_scalars_and_refuses_mismatched_shapes():
    assert rel_error(1.0, 1.0) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.zeros(3), np.zeros(4))


# --- eval_numerical_gradient ----------------------------------------------------------------------


def test_eval_numerical_gradient_of_sum_of_cubes_is_3x2():
    x = np.random.default_rng(1).standard_normal((3, 4))
    grad = eval_numerical_gradient(lambda x: np.sum(x**3), x, verbose=False)
    assert grad.shape == x.shape and grad.dtype == np.float64
    # The centered difference of x**3 is 3x**2 + h**2: 1e-10 off, relatively 4e-8 on the
    # smallest entry here (2.4e-3).
    assert rel_error(grad, 3 * x**2) < 1e-6
    np.testing.assert_allclose(grad, 3 * x**2 + 1e-10, rtol=1e-8, atol=1e-10)


def test_eval_numerical_gradient_reads_x_through_a_closure():
    """The notebooks pass ``lambda _: model.loss(X, y)[0]``: the point is perturbed in place."""
    w = np.array([1.0, -2.0, 0.5])
    grad = eval_numerical_gradient(lambda _: float(np.sum(np.sin(w))), w, verbose=False)
    assert rel_error(grad, np.cos(w)) < 1e-8


def test_eval_numerical_gradient_uses_centered_differences_with_step_h():
    # For f = x**3 a centered difference has error exactly h**2 (one-sided would be 3*x*h).
    x = np.array([2.0])
    grad = eval_numerical_gradient(lambda x: float(x[0] ** 3), x, verbose=False, h=1e-2)
    assert grad[0] == pytest.approx(12.0 + 1e-4, rel=1e-9)


def test_eval_numerical_gradient_restores_x():
    x = np.random.default_rng(2).standard_normal((2, 3))
    saved = x.copy()
    eval_numerical_gradient(lambda x: np.sum(x**2), x, verbose=False)
    np.testing.assert_array_equal(x, saved)


def test_eval_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    saved = x.copy()
    calls = []

    def f(point):
        calls.append(point.copy())
        if len(calls) == 3:  # the second entry's "+h" evaluation
            raise RuntimeError("boom")
        return float(np.sum(point))

    with pytest.raises(RuntimeError, match="boom"):
        eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_array_equal(x, saved)
    assert calls[2][1] != saved[1]  # it was perturbed when f raised


def test_eval_numerical_gradient_verbose_prints_each_entry(capsys):
    x = np.array([1.0, 2.0])
    eval_numerical_gradient(lambda x: np.sum(x**2), x, verbose=False)
    assert capsys.readouterr().out == ""
    eval_numerical_gradient(lambda x: np.sum(x**2), x, verbose=True)
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_eval_numerical_gradient_refuses_integer_points_and_bad_h():
    with pytest.raises(TypeError):
        eval_numerical_gradient(lambda x: 0.0, np.arange(3), verbose=False)
    with pytest.raises(ValueError):
        eval_numerical_gradient(lambda x: 0.0, np.zeros(3), verbose=False, h=0.0)


# --- eval_numerical_gradient_array ---------------------------------------------------------------


def test_eval_numerical_gradient_array_is_the_vector_jacobian_product():
    rng = np.random.default_rng(3)
    x, df = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    grad = eval_numerical_gradient_array(lambda x: x**2, x, df)
    assert rel_error(grad, 2 * x * df) < 1e-8
    A = rng.standard_normal((5, 4))
    df2 = rng.standard_normal((3, 5))
    grad = eval_numerical_gradient_array(lambda x: x @ A.T, x, df2)
    assert rel_error(grad, df2 @ A) < 1e-8


def test_eval_numerical_gradient_array_copes_with_f_returning_x_itself():
    """f may return a view of x (identity, reshape): the +h output must be copied before the -h call."""
    x = np.random.default_rng(4).standard_normal((2, 3))
    df = np.random.default_rng(5).standard_normal((2, 3))
    grad = eval_numerical_gradient_array(lambda x: x, x, df)
    np.testing.assert_allclose(grad, df, rtol=1e-8)
    grad = eval_numerical_gradient_array(lambda x: x.reshape(3, 2), x, df.reshape(3, 2))
    np.testing.assert_allclose(grad, df, rtol=1e-8)


def test_eval_numerical_gradient_array_restores_x_also_when_f_raises():
    x = np.array([1.0, 2.0])
    saved = x.copy()
    eval_numerical_gradient_array(lambda x: 2 * x, x, np.ones(2))
    np.testing.assert_array_equal(x, saved)

    def boom(point):
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        eval_numerical_gradient_array(boom, x, np.ones(2))
    np.testing.assert_array_equal(x, saved)


def test_eval_numerical_gradient_array_refuses_df_of_the_wrong_shape():
    with pytest.raises(ValueError, match="df"):
        eval_numerical_gradient_array(lambda x: 2 * x, np.ones(3), np.ones(4))


# --- grad_check_sparse ----------------------------------------------------------------------------


def test_grad_check_sparse_small_for_a_correct_gradient_large_for_a_wrong_one(capsys):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 6))
    saved = x.copy()
    f = lambda x: float(np.sum(x**3))  # noqa: E731
    np.random.seed(0)
    errors = grad_check_sparse(f, x, 3 * x**2, num_checks=8)
    assert len(errors) == 8
    assert max(errors) < 1e-7
    assert len(capsys.readouterr().out.strip().splitlines()) == 8
    wrong = grad_check_sparse(f, x, 2 * x**2, num_checks=8)
    assert min(wrong) > 0.1  # |3 - 2| / (3 + 2) = 0.2
    np.testing.assert_array_equal(x, saved)


def test_grad_check_sparse_draws_entries_from_the_global_generator():
    x = np.arange(1.0, 21.0).reshape(4, 5)
    grad = np.zeros_like(x)
    grad[0, 0] = 1.0  # only one entry is right: f = x[0, 0]

    np.random.seed(1)
    first = grad_check_sparse(lambda x: float(x[0, 0]), x, grad, num_checks=6)
    np.random.seed(1)
    again = grad_check_sparse(lambda x: float(x[0, 0]), x, grad, num_checks=6)
    assert first == again


def test_grad_check_sparse_refuses_a_gradient_of_the_wrong_shape():
    with pytest.raises(ValueError):
        grad_check_sparse(lambda x: 0.0, np.zeros((2, 3)), np.zeros((3, 2)))
