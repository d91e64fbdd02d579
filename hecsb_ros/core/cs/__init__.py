"""Compressed-sensing experiment of the seed paper (sections 3.1, 3.2, 4.1; eq. 1-9, Fig. 7).

Recover ``x`` in R^n from ``m < n`` noisy measurements ``y = W x + eps`` (eq. 1 with ``f_psi`` the
identity) with three kinds of decoder:

* :mod:`.lasso` -- LASSO with a random Gaussian ``A`` (the classical baseline), sparse in pixels or
  in the orthonormal 2-D DCT, optionally around the mean training image;
* :mod:`.vae` -- compressed sensing with a generative model (Bora et al.): a VAE decoder ``G`` and
  ``x_hat = G(argmin_z ||y - A G(z)||^2 + lambda ||z||^2)``;
* :mod:`.hecsa` -- the HECS autoencoder: a learned ``W`` with ``||W||_F <= k`` (the shared
  :class:`hecsb_ros.core.measurement.MeasurementOperator`) and a decoder ``p_theta(x|y)``, trained
  by maximising the variational bound ``E[log p_theta(x|y)]`` (eq. 8-9).

:mod:`.experiment` runs them all over ``m`` and data sets; :mod:`.plots` draws Fig. 7.
ROS-free: nothing here imports rclpy.
"""

from hecsb_ros.core.cs.data import CSData, load_cs_data, measurement_noise
from hecsb_ros.core.cs.hecsa import HECSA, train_hecsa
from hecsb_ros.core.cs.lasso import LassoVariant, dct_basis, lasso_reconstruct, select_alpha
from hecsb_ros.core.cs.vae import VAE, train_vae, vae_reconstruct

__all__ = [
    "CSData",
    "load_cs_data",
    "measurement_noise",
    "HECSA",
    "train_hecsa",
    "LassoVariant",
    "dct_basis",
    "lasso_reconstruct",
    "select_alpha",
    "VAE",
    "train_vae",
    "vae_reconstruct",
]
