from setuptools import find_packages, setup

setup(
    name="rtserver",
    version="0.1.0",
    description="Red packets (红包) for chat apps, served in real time over WebSockets",
    python_requires=">=3.11",
    packages=find_packages(include=["server", "server.*", "rtserver", "rtserver.*", "handlers",
                                    "handlers.*", "storage", "storage.*", "jobs", "jobs.*"]),
    package_data={"storage": ["migrations/*.sql", "scripts/*.lua"]},
    install_requires=[
        # Only the minor versions checked against handlers/tornado_internals.py: rtserver
        # relies on Tornado's internals, and 6.5 already answers a chunked body differently.
        "tornado>=6.6,<6.7",
        "aiomysql>=0.2,<0.4",
        "PyMySQL>=1.1,<2",
        "redis[hiredis]>=5.0,<9",
        "msgpack>=1.0,<2",
        "PyJWT>=2.8,<3",
        "cryptography>=42",
        "prometheus_client>=0.20,<1",
        "PyYAML>=6,<7",  # GET /asyncapi.json serves docs/asyncapi.yaml as JSON
        "uvloop>=0.19; sys_platform != 'win32'",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-tornado>=0.8,<0.9",
            "hypothesis>=6.100,<7",
            "setuptools<81",
            "playwright>=1.40,<2",  # the browser tests; they drive the system's Chromium
            "schemathesis>=4.32,<5",  # tests/test_openapi.py; 4.32 needs pytest<10, hypothesis<7
            "import-linter>=2.1,<3",  # `make test` holds the layers to `.importlinter` first
            "wechatpayv3>=2.0,<3",  # WeChat Pay's SDK checks our API v3 signatures independently
            "python-alipay-sdk>=3.3,<4",  # an independent check of Alipay signatures in tests
            # tests/test_asyncapi.py, and every frame the tests receive, against docs/asyncapi.yaml
            "jsonschema>=4.18,<5",
        ],
        "bench": [
            "py-spy>=0.3,<1",  # `make bench BENCH_ARGS="--profile FILE"`
            "matplotlib>=3.7,<4",  # `make chaos` draws its run
        ],
    },
    entry_points={"console_scripts": ["rtserver = server.cli:main"]},
)
