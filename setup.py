from setuptools import find_packages, setup

setup(
    name="keras-seqattn",
    version="0.1.0",
    description="Drop-in Keras 3 layers for sequence attention on TensorFlow.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_seqattn", "keras_seqattn.*"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "tensorflow-text>=2.21,<2.22",
        "numpy",
    ],
    extras_require={
        "test": ["pytest", "hypothesis", "jax[cpu]", "keras-hub", "num2words", "babel", "matplotlib"],
        "examples": ["matplotlib", "babel", "num2words"],
        "bench": ["keras-hub"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
