"""Automatic differentiation on top of the array API: modes (record/pause/no_grad...), tape (backward,
.grad writes, GradientTape, the batched reverse Jacobian), transforms (grad, vjp, jvp, jacobian...), custom
(custom_vjp, custom_jvp) and checkpoint."""
