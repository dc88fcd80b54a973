"""The update rules of chapter 7.3 ("优化问题"), written literally as Keras optimizers.

Each class follows the chapter's formula symbol for symbol; where the chapter and Keras' built-in
optimizer differ, the docstring says how, and `keras_differences` measures it on one shared
sequence of gradients (tests/test_training.py asserts those numbers; the suite reports them).

`lr_scale` (optional, broadcastable to the variables) multiplies eta element by element, so that
one variable of shape (G, 2) can carry G independent 2-D runs of a learning-rate grid at once. For
Adadelta, which has no eta, it scales its only knob instead: epsilon becomes epsilon * lr_scale**2
(the first step is about sqrt(epsilon), so this matches an eta multiplied by lr_scale).
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


class _Chapter(keras.optimizers.Optimizer):
    """Shared plumbing: per-element learning-rate scale and the step counter tau."""

    def __init__(self, learning_rate: float, name: str, lr_scale: Any = None, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.lr_scale = None if lr_scale is None else np.asarray(lr_scale, dtype="float32")

    def _eta(self, learning_rate: Any, variable: Any) -> Any:
        eta = ops.cast(learning_rate, variable.dtype)
        return eta if self.lr_scale is None else eta * ops.cast(self.lr_scale, variable.dtype)

    def _first(self) -> Any:
        return ops.equal(self.iterations, 0)

    def _slots(self, variables: list, *names: str) -> None:
        for n in names:
            setattr(self, f"_{n}", self.add_optimizer_variables(variables, n))

    def _slot(self, name: str, variable: Any) -> Any:
        return getattr(self, f"_{name}")[self._get_variable_index(variable)]


class ChapterSGD(_Chapter):
    """w(τ+1) = w(τ) − η·∇E(w(τ)). Identical to keras.optimizers.SGD()."""

    def __init__(self, learning_rate: float = 0.01, lr_scale: Any = None, name: str = "chapter_sgd", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)

    def update_step(self, gradient, variable, learning_rate):
        self.assign_sub(variable, self._eta(learning_rate, variable) * ops.cast(gradient, variable.dtype))


class ChapterMomentum(_Chapter):
    """g(τ) = α·g(τ−1) + η·∇E(τ) with g(0) = ∇E(0); w(τ+1) = w(τ) − g(τ).

    The chapter starts the velocity at the raw gradient, so its first step is ∇E(0), not η·∇E(0):
    it differs from keras SGD(momentum=α) (velocity starting at 0) by (1−η)·∇E(0)·α^τ in g(τ),
    summing to (1−η)·∇E(0)/(1−α) in w. `first="scaled"` starts at η·∇E(0), which is Keras' rule.
    """

    def __init__(self, learning_rate: float = 0.01, alpha: float = 0.9, first: str = "gradient",
                 lr_scale: Any = None, name: str = "chapter_momentum", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)
        if first not in ("gradient", "scaled"):
            raise ValueError("first is 'gradient' (the chapter) or 'scaled' (Keras)")
        self.alpha, self.first = alpha, first

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "g")

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)
        eta = self._eta(learning_rate, variable)
        g = self._slot("g", variable)
        g0 = grad if self.first == "gradient" else eta * grad
        self.assign(g, ops.where(self._first(), g0, self.alpha * g + eta * grad))
        self.assign_sub(variable, g)


class ChapterNesterov(_Chapter):
    """w_pre(τ) = w(τ) + β·g(τ−1); g(τ) = α·g(τ−1) + η·∇E(w_pre(τ)); w(τ+1) = w(τ) − g(τ).

    Keras hands an optimizer the gradient at the model's variable, so the model's variable holds
    w_pre (where the chapter takes the gradient) and a slot holds w; `finalize_variable_values`
    (called by fit at the end) writes w back. g(−1) = 0 (the chapter gives no start for NAG).
    As written, β > 0 moves the look-ahead point *against* the direction of travel (w moves by −g);
    with β = −α the rule is exactly Keras SGD(momentum=α, nesterov=True), whose variable holds the
    same look-ahead point. β defaults to α, the chapter's sign.
    """

    def __init__(self, learning_rate: float = 0.01, alpha: float = 0.9, beta: float | None = None,
                 lr_scale: Any = None, name: str = "chapter_nesterov", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)
        self.alpha = alpha
        self.beta = alpha if beta is None else beta

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "g", "w")

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)   # = ∇E(w_pre(τ)), the variable holds w_pre
        g, w = self._slot("g", variable), self._slot("w", variable)
        # At τ = 0, g(−1) = 0 so w_pre = w: the slot w starts at the variable's value.
        self.assign(w, ops.where(self._first(), variable, w))
        self.assign(g, self.alpha * g + self._eta(learning_rate, variable) * grad)
        self.assign_sub(w, g)
        self.assign(variable, w + self.beta * g)     # the next look-ahead point w_pre(τ+1)

    def iterate(self, variable: Any) -> Any:
        """The iterate w(τ) (the model's variable holds the look-ahead point w_pre)."""
        return ops.where(ops.greater(self.iterations, 0), self._slot("w", variable), variable)

    def finalize_variable_values(self, var_list):
        if self.built and int(self.iterations.numpy()) > 0:
            for v in var_list:
                v.assign(self._slot("w", v))
        super().finalize_variable_values(var_list)


class ChapterAdagrad(_Chapter):
    """η(τ) = η0 / sqrt(Σ_{t=1..τ} ∇E(w(t))² + ε); w(τ+1) = w(τ) − η(τ)·∇E(w(τ)).

    The sum starts empty; Keras' Adagrad starts its accumulator at initial_accumulator_value=0.1,
    so its early steps are much smaller. With initial_accumulator_value=0 the two are identical
    (ε inside the root in both).
    """

    def __init__(self, learning_rate: float = 0.001, epsilon: float = 1e-7, lr_scale: Any = None,
                 name: str = "chapter_adagrad", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)
        self.epsilon = epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "sum")

    def rate(self, variable: Any) -> Any:
        """The current per-element learning rate η(τ) of one variable (for measuring its decay)."""
        eta = self._eta(self.learning_rate, variable)
        return eta / ops.sqrt(self._slot("sum", variable) + self.epsilon)

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)
        s = self._slot("sum", variable)
        self.assign_add(s, ops.square(grad))
        self.assign_sub(variable, self._eta(learning_rate, variable) / ops.sqrt(s + self.epsilon) * grad)


class ChapterRMSprop(_Chapter):
    """g(τ) = α·g(τ−1) + (1−α)·∇E(τ)²; w(τ+1) = w(τ) − η0/sqrt(g(τ) + ε)·∇E(w(τ)); g(0) = 0.

    Identical to keras RMSprop(rho=α) (ε inside the root in both); Keras' default rho is 0.9.
    """

    def __init__(self, learning_rate: float = 0.001, alpha: float = 0.9, epsilon: float = 1e-7,
                 lr_scale: Any = None, name: str = "chapter_rmsprop", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)
        self.alpha, self.epsilon = alpha, epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "g")

    def rate(self, variable: Any) -> Any:
        eta = self._eta(self.learning_rate, variable)
        return eta / ops.sqrt(self._slot("g", variable) + self.epsilon)

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)
        g = self._slot("g", variable)
        self.assign(g, self.alpha * g + (1 - self.alpha) * ops.square(grad))
        self.assign_sub(variable, self._eta(learning_rate, variable) / ops.sqrt(g + self.epsilon) * grad)


class ChapterAdadelta(_Chapter):
    """w(τ+1) = w(τ) − sqrt(Δw(τ−1) + ε)/sqrt(g(τ) + ε)·∇E(w(τ)) — no learning rate.

    The chapter leaves two symbols undefined; we read g(τ) as RMSprop's running mean of ∇E² (the
    chapter's previous definition of g) and Δw(τ−1) as the running mean of squared updates up to
    τ−1 (the literal previous update can be negative under a square root), both with rate ρ. That
    is keras Adadelta(learning_rate=1.0, rho=ρ); Keras' default learning_rate=0.001 scales every
    step by 1/1000, so the default Keras Adadelta is not the chapter's "no learning rate" rule.
    """

    def __init__(self, rho: float = 0.95, epsilon: float = 1e-7, lr_scale: Any = None,
                 name: str = "chapter_adadelta", **kw: Any):
        super().__init__(1.0, name, lr_scale, **kw)
        self.rho, self.epsilon = rho, epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "g", "dw")

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)
        eps = self.epsilon if self.lr_scale is None else self.epsilon * ops.cast(self.lr_scale, variable.dtype) ** 2
        g, dw = self._slot("g", variable), self._slot("dw", variable)
        self.assign(g, self.rho * g + (1 - self.rho) * ops.square(grad))
        step = ops.sqrt(dw + eps) / ops.sqrt(g + eps) * grad
        self.assign(dw, self.rho * dw + (1 - self.rho) * ops.square(step))
        self.assign_sub(variable, step)


class ChapterAdam(_Chapter):
    """m = α·m + (1−α)·∇E; n = β·n + (1−β)·∇E²; m̂ = m/(1−α^τ); n̂ = n/(1−β^τ);
    w(τ+1) = w(τ) − η/(sqrt(n̂) + ε)·m̂.

    Keras folds the bias corrections into the step size and adds ε to sqrt(n) (uncorrected), i.e.
    its ε is ε·sqrt(1−β^τ) in the chapter's terms, larger early on; with the same ε the two differ
    only where sqrt(n̂) is comparable to ε (tiny gradients).
    """

    def __init__(self, learning_rate: float = 0.001, alpha: float = 0.9, beta: float = 0.999,
                 epsilon: float = 1e-7, lr_scale: Any = None, name: str = "chapter_adam", **kw: Any):
        super().__init__(learning_rate, name, lr_scale, **kw)
        self.alpha, self.beta, self.epsilon = alpha, beta, epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._slots(variables, "m", "n")

    def update_step(self, gradient, variable, learning_rate):
        grad = ops.cast(gradient, variable.dtype)
        tau = ops.cast(self.iterations + 1, variable.dtype)
        m, n = self._slot("m", variable), self._slot("n", variable)
        self.assign(m, self.alpha * m + (1 - self.alpha) * grad)
        self.assign(n, self.beta * n + (1 - self.beta) * ops.square(grad))
        m_hat = m / (1 - ops.power(ops.cast(self.alpha, variable.dtype), tau))
        n_hat = n / (1 - ops.power(ops.cast(self.beta, variable.dtype), tau))
        self.assign_sub(variable, self._eta(learning_rate, variable) / (ops.sqrt(n_hat) + self.epsilon) * m_hat)


# Each optimizer's default settings: Keras' defaults (the chapter gives no numbers); Adadelta has
# no learning rate. "grid_knob" is what a learning-rate grid multiplies.
DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"cls": ChapterSGD, "kwargs": {"learning_rate": 0.01}},
    "momentum": {"cls": ChapterMomentum, "kwargs": {"learning_rate": 0.01, "alpha": 0.9}},
    "momentum_keras_start": {"cls": ChapterMomentum, "kwargs": {"learning_rate": 0.01, "alpha": 0.9, "first": "scaled"}},
    "nesterov": {"cls": ChapterNesterov, "kwargs": {"learning_rate": 0.01, "alpha": 0.9}},
    "nesterov_sign_fixed": {"cls": ChapterNesterov, "kwargs": {"learning_rate": 0.01, "alpha": 0.9, "beta": -0.9}},
    "adagrad": {"cls": ChapterAdagrad, "kwargs": {"learning_rate": 0.001}},
    "rmsprop": {"cls": ChapterRMSprop, "kwargs": {"learning_rate": 0.001, "alpha": 0.9}},
    "adadelta": {"cls": ChapterAdadelta, "kwargs": {"rho": 0.95}},
    "adam": {"cls": ChapterAdam, "kwargs": {"learning_rate": 0.001}},
}


# The standard (published) algorithms, as the chapter classes set to the published conventions;
# tests/test_optimizers.py checks each against Keras' built-in with the same settings:
# SGD; heavy-ball momentum with the velocity starting at 0 (Polyak 1964, Sutskever et al. 2013;
# Keras SGD(momentum)); NAG with the look-ahead along the momentum step, w − αg (Sutskever et al.
# 2013; Keras SGD(nesterov=True)); Adagrad with the sum starting at 0 (Duchi et al. 2011); RMSprop
# with ρ = 0.9 (Tieleman & Hinton 2012); Adadelta without a learning rate (Zeiler 2012, ρ = 0.95);
# Adam (Kingma & Ba 2015, Algorithm 1). ε = 1e-7 (Keras' default) where the rule has one.
STANDARD: dict[str, Any] = {
    "sgd": lambda lr, scale: ChapterSGD(lr, lr_scale=scale, name="sgd"),
    "momentum": lambda lr, scale: ChapterMomentum(lr, 0.9, first="scaled", lr_scale=scale, name="momentum"),
    "nesterov": lambda lr, scale: ChapterNesterov(lr, 0.9, beta=-0.9, lr_scale=scale, name="nesterov"),
    "adagrad": lambda lr, scale: ChapterAdagrad(lr, lr_scale=scale, name="adagrad"),
    "rmsprop": lambda lr, scale: ChapterRMSprop(lr, 0.9, lr_scale=scale, name="rmsprop"),
    "adadelta": lambda eps, scale: ChapterAdadelta(rho=0.95, epsilon=eps, lr_scale=scale, name="adadelta"),
    "adam": lambda lr, scale: ChapterAdam(lr, lr_scale=scale, name="adam"),
}
# The chapter's two rules that are not the standard ones, as written (OPT-FORMULAS).
LITERAL: dict[str, Any] = {
    "momentum": lambda lr, scale: ChapterMomentum(lr, 0.9, first="gradient", lr_scale=scale, name="momentum_literal"),
    "nesterov": lambda lr, scale: ChapterNesterov(lr, 0.9, beta=0.9, lr_scale=scale, name="nesterov_literal"),
}


def on_grid(builder: Any, knobs: Any, shape: tuple[int, ...]) -> keras.optimizers.Optimizer:
    """One optimizer whose rows run a grid of its knob side by side: row i of every variable (the
    variables' first axis) uses knobs[i]. The knob is η, or ε for Adadelta (its only setting:
    lr_scale multiplies ε by scale², so scale = sqrt(ε_i / ε_base) with ε_base = 1)."""
    knobs = np.asarray(knobs, dtype="float64")
    if builder is STANDARD["adadelta"]:
        return builder(1.0, np.sqrt(knobs).reshape(shape).astype("float32"))
    return builder(1.0, knobs.reshape(shape).astype("float32"))


def make(name: str, multiplier: float = 1.0, lr_scale: Any = None) -> keras.optimizers.Optimizer:
    """The chapter optimizer `name` at its default settings, learning rate times `multiplier`.

    For Adadelta (no learning rate) the multiplier acts as lr_scale does: on epsilon, squared.
    """
    spec = DEFAULTS[name]
    kwargs = dict(spec["kwargs"])
    if name == "adadelta":
        kwargs["epsilon"] = 1e-7 * multiplier ** 2
    else:
        kwargs["learning_rate"] = kwargs["learning_rate"] * multiplier
    return spec["cls"](lr_scale=lr_scale, **kwargs)


def keras_counterparts() -> dict[str, dict[str, keras.optimizers.Optimizer]]:
    """For each chapter optimizer: Keras' built-in at Keras defaults, and set to match the chapter."""
    K = keras.optimizers
    return {
        "sgd": {"default": K.SGD(0.01), "matched": K.SGD(0.01)},
        "momentum": {"default": K.SGD(0.01, momentum=0.9), "matched": K.SGD(0.01, momentum=0.9)},
        "nesterov": {"default": K.SGD(0.01, momentum=0.9, nesterov=True),
                     "matched": K.SGD(0.01, momentum=0.9, nesterov=True)},
        "adagrad": {"default": K.Adagrad(0.001), "matched": K.Adagrad(0.001, initial_accumulator_value=0.0)},
        "rmsprop": {"default": K.RMSprop(0.001), "matched": K.RMSprop(0.001, rho=0.9)},
        "adadelta": {"default": K.Adadelta(rho=0.95), "matched": K.Adadelta(learning_rate=1.0, rho=0.95)},
        "adam": {"default": K.Adam(0.001), "matched": K.Adam(0.001)},
    }


def chapter_counterparts() -> dict[str, dict[str, keras.optimizers.Optimizer]]:
    """The chapter's rule as written ("literal"), and adjusted to Keras' convention ("matched")."""
    return {
        "sgd": {"literal": ChapterSGD(0.01), "matched": ChapterSGD(0.01)},
        "momentum": {"literal": ChapterMomentum(0.01), "matched": ChapterMomentum(0.01, first="scaled")},
        "nesterov": {"literal": ChapterNesterov(0.01), "matched": ChapterNesterov(0.01, beta=-0.9)},
        "adagrad": {"literal": ChapterAdagrad(0.001), "matched": ChapterAdagrad(0.001)},
        "rmsprop": {"literal": ChapterRMSprop(0.001), "matched": ChapterRMSprop(0.001)},
        "adadelta": {"literal": ChapterAdadelta(), "matched": ChapterAdadelta()},
        "adam": {"literal": ChapterAdam(0.001), "matched": ChapterAdam(0.001)},
    }


def _trajectory(opt: keras.optimizers.Optimizer, start: np.ndarray, grads: np.ndarray) -> np.ndarray:
    v = keras.Variable(start.copy(), dtype="float32")
    out = []
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), v)])
        out.append(np.array(v.numpy()))
    return np.stack(out)


def keras_differences(steps: int = 50, size: int = 64, seed: int = 0, grad_scale: float = 1.0,
                      names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Feed the same gradient sequence to each chapter optimizer and to Keras' built-in; return the
    largest |w_chapter − w_keras| over all steps and elements, for four pairings:
    literal/default, literal/matched, matched/matched (must be ~0), and matched/default.

    The gradients are a fixed Gaussian sequence (times `grad_scale`) independent of w, so the
    difference is the rules' alone, not a feedback through the loss.
    """
    rng = np.random.default_rng(seed)
    start = rng.normal(size=size).astype("float32")
    grads = (grad_scale * rng.normal(size=(steps, size))).astype("float32")
    out: dict[str, float] = {}
    kc, cc = keras_counterparts(), chapter_counterparts()
    for name in names or tuple(kc):
        traj = {f"chapter_{k}": _trajectory(o, start, grads) for k, o in cc[name].items()}
        traj |= {f"keras_{k}": _trajectory(o, start, grads) for k, o in kc[name].items()}
        for a, b in (("chapter_literal", "keras_default"), ("chapter_literal", "keras_matched"),
                     ("chapter_matched", "keras_matched")):
            out[f"{name}_{a.split('_')[1]}_vs_{b.split('_')[1]}"] = float(np.max(np.abs(traj[a] - traj[b])))
    return out
