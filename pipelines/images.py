"""The AWS Deep Learning Container that runs the training and evaluation jobs: a pinned table, no SDK.

The image is `pytorch-training:2.6-cpu-py312`, published by AWS in one registry account per region.
The accounts come from AWS's list of Deep Learning Containers images
(https://aws.github.io/deep-learning-containers/reference/available_images/), the same table as
sagemaker-python-sdk's `image_uri_config/pytorch.json` (training, 2.6.0, py312). To move to another
PyTorch release, change FRAMEWORK_VERSION and check the accounts against that list.
"""

from __future__ import annotations

FRAMEWORK_VERSION = "2.6"
PY_VERSION = "py312"
REPOSITORY = "pytorch-training"
TAG = f"{FRAMEWORK_VERSION}-cpu-{PY_VERSION}"

# Most commercial regions pull from AWS's main DLC account; the newer and isolated regions have their own.
MAIN_ACCOUNT = "763104351884"
MAIN_ACCOUNT_REGIONS = frozenset(
    {
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    }
)
REGIONAL_ACCOUNTS: dict[str, str] = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "mx-central-1": "637423239942",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}


def training_image(region: str) -> str:
    """The PyTorch training image URI in `region`; ValueError for a region the table does not list."""
    account = MAIN_ACCOUNT if region in MAIN_ACCOUNT_REGIONS else REGIONAL_ACCOUNTS.get(region)
    if account is None:
        raise ValueError(f"no PyTorch {FRAMEWORK_VERSION} training image is listed for region {region!r}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{TAG}"
