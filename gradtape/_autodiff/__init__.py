"""Automatic differentiation on top of the array API: modes (record/pause/no_grad...), tape (backward,
.grad writes, GradientTape), transforms (grad, vjp, jvp, jacobian...), custom (custom_vjp/jvp, checkpoint)."""
