"""keras_kd: knowledge distillation, compression and TFLite export for Keras models."""

from setuptools import find_packages, setup

setup(
    name="keras_kd",
    version="0.1.0",
    description="Turn big Keras models into small, fast ones: distillation, tfmot compression, TFLite export.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_kd", "keras_kd.*"]),
    python_requires=">=3.10,<3.13",
    # Ranges tested together on Python 3.11: TF 2.21 with its tf_keras; tfmot 0.8 is tf_keras-only.
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tf-keras>=2.21,<2.22",
        "tensorflow-model-optimization>=0.8.1,<0.9",
        "tensorflow-datasets>=4.9.9,<5",
        "ai-edge-litert>=2.1,<3",
        "absl-py>=1.4",
        "numpy>=1.26,<3",
        "scikit-learn>=1.4,<2",
        "mnist1d>=0.0.2,<0.1",
        "matplotlib>=3.8,<4",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6.100"],
    },
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
